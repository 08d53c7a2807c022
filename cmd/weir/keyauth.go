package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redis/rueidis"
	keyauth "github.com/weirgw/weir/plugins/key_auth"
	"github.com/weirgw/weir/proxy"
	"github.com/weirgw/weir/proxy/config"
)

const keyAuthUsage = `usage:
  weir key-auth put -c FILE --consumer NAME [--groups G1,G2] [--id ID] < KEYFILE
  weir key-auth delete -c FILE < KEYFILE

Writes or deletes a key_auth credential in the Redis of FILE's redis
section, for key_auth's redis_lookup. The API key is read from standard
input (its first line), never from the command line, so that it does not
show in the process list or the shell history. Redis stores the key's
SHA-256, never the key.
`

// cmdKeyAuth is `weir key-auth put|delete`.
func cmdKeyAuth(args []string, stdin io.Reader) int {
	if len(args) == 0 || (args[0] != "put" && args[0] != "delete") {
		fmt.Fprint(os.Stderr, keyAuthUsage)
		return 2
	}
	op := args[0]
	fs := flag.NewFlagSet("key-auth "+op, flag.ContinueOnError)
	file := fs.String("c", "", "config file whose redis section to use")
	cons := fs.String("consumer", "", "consumer name (put)")
	groups := fs.String("groups", "", "comma-separated groups (put)")
	id := fs.String("id", "", "credential ID (put; default CONSUMER#<first 12 hex digits of the key's SHA-256>)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	fail := func(msg string) int {
		fmt.Fprintf(os.Stderr, "weir key-auth %s: %s\n", op, msg)
		return 2
	}
	switch {
	case *file == "":
		return fail("-c FILE is required")
	case op == "put" && *cons == "":
		return fail("--consumer NAME is required")
	case op == "delete" && (*cons != "" || *groups != "" || *id != ""):
		return fail("delete takes only -c; the key is read from standard input")
	}
	cfg, err := config.Load(*file)
	if err != nil {
		printErrors(err)
		return 1
	}
	if cfg.Redis == nil {
		return fail(*file + ": no redis section; add redis: {addrs: [HOST:PORT]}")
	}
	key, err := readKey(stdin)
	if err != nil {
		return fail(err.Error())
	}
	c, err := rueidis.NewClient(proxy.RedisClientOption(cfg.Redis))
	if err != nil {
		return fail(fmt.Sprintf("redis %s: %v", strings.Join(cfg.Redis.Addrs, ","), err))
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rk := keyauth.RedisKey(key)
	if op == "delete" {
		n, err := c.Do(ctx, c.B().Del().Key(rk).Build()).AsInt64()
		if err != nil {
			return fail(err.Error())
		}
		if n == 0 {
			fmt.Fprintf(os.Stderr, "weir key-auth delete: %s was not in Redis\n", rk)
			return 1
		}
		fmt.Printf("deleted %s\n", rk)
		return 0
	}
	cred := keyauth.RedisCredential{Consumer: *cons, ID: *id}
	if *groups != "" {
		cred.Groups = strings.Split(*groups, ",")
	}
	val, _ := json.Marshal(cred)
	if err := c.Do(ctx, c.B().Set().Key(rk).Value(string(val)).Build()).Error(); err != nil {
		return fail(err.Error())
	}
	fmt.Printf("wrote %s for consumer %q\n", rk, *cons)
	return 0
}

// readKey reads the API key: the first line of r, without its line end.
func readKey(r io.Reader) ([]byte, error) {
	line, err := bufio.NewReader(r).ReadBytes('\n')
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading the key from standard input: %v", err)
	}
	line = []byte(strings.TrimRight(string(line), "\r\n"))
	if len(line) == 0 {
		return nil, errors.New("no key on standard input: pipe it in, e.g. printf %s \"$KEY\" | weir key-auth put -c FILE --consumer NAME")
	}
	return line, nil
}
