package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// writePostScript writes, into dir, the Lua script with which wrk POSTs
// requestBody (the POST1KiB rows and the shape bench's POSTs), and
// returns its path.
func writePostScript(dir string) (string, error) {
	script := filepath.Join(dir, "post1k.lua")
	// strconv.Quote's escapes (\n, \") are Lua's too for ASCII text.
	lua := "wrk.method = \"POST\"\nwrk.body = " + strconv.Quote(string(requestBody)) +
		"\nwrk.headers[\"Content-Type\"] = \"text/plain\"\n"
	if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
		return "", fmt.Errorf("write wrk's POST script: %w", err)
	}
	return script, nil
}

// wrkResult is what the harness keeps of one wrk run.
type wrkResult struct {
	Requests int64   `json:"requests"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"` // all answers per second, as wrk counts
	Non2xx   int64   `json:"non_2xx"`
	Errors   int64   `json:"socket_errors"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
}

// parseWrk reads the text wrk prints with --latency. Requests/sec and the
// request count are required; the rest is optional in wrk's output and
// stays zero when absent.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var haveRPS, haveCount, inDist bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Requests/sec:"):
			if len(f) != 2 {
				return r, fmt.Errorf("parse wrk output: bad line %q", line)
			}
			v, err := strconv.ParseFloat(f[1], 64)
			if err == nil && !(v >= 0) {
				err = errors.New("negative")
			}
			if err != nil {
				return r, fmt.Errorf("parse wrk output: requests/sec %q: %w", f[1], err)
			}
			r.RPS, haveRPS = v, true
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			// "100000 requests in 2.00s, 10.00MB read"
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err == nil && n < 0 {
				err = errors.New("negative")
			}
			if err != nil {
				return r, fmt.Errorf("parse wrk output: request count %q: %w", f[0], err)
			}
			d, err := parseWrkDuration(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return r, fmt.Errorf("parse wrk output: run time: %w", err)
			}
			r.Requests, r.Seconds, haveCount = n, d/1e6, true
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:")), 10, 64)
			if err != nil || n < 0 {
				return r, fmt.Errorf("parse wrk output: bad line %q", line)
			}
			r.Non2xx = n
		case strings.HasPrefix(line, "Socket errors:"):
			// "Socket errors: connect 0, read 0, write 0, timeout 3"
			parts := strings.Split(strings.TrimPrefix(line, "Socket errors:"), ",")
			for _, p := range parts {
				kv := strings.Fields(p)
				if len(kv) != 2 {
					return r, fmt.Errorf("parse wrk output: bad line %q", line)
				}
				n, err := strconv.ParseInt(kv[1], 10, 64)
				if err != nil || n < 0 {
					return r, fmt.Errorf("parse wrk output: bad line %q", line)
				}
				r.Errors += n
			}
		case line == "Latency Distribution":
			inDist = true
		case inDist && len(f) == 2 && strings.HasSuffix(f[0], "%"):
			v, err := parseWrkDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("parse wrk output: latency %q: %w", line, err)
			}
			switch f[0] {
			case "50%":
				r.P50us = v
			case "99%":
				r.P99us = v
			}
		default:
			inDist = false
		}
	}
	if !haveRPS || !haveCount {
		return r, errors.New("parse wrk output: no \"Requests/sec\" or request count line (did wrk fail?)")
	}
	return r, nil
}

// parseWrkDuration turns wrk's "560.00us", "1.50ms", "2.00s", "1.00m"
// into microseconds.
func parseWrkDuration(s string) (float64, error) {
	units := []struct {
		suffix string
		us     float64
	}{{"us", 1}, {"ms", 1e3}, {"s", 1e6}, {"m", 60e6}, {"h", 3600e6}}
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			v, err := strconv.ParseFloat(strings.TrimSuffix(s, u.suffix), 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("bad duration %q", s)
			}
			return v * u.us, nil
		}
	}
	return 0, fmt.Errorf("bad duration %q: want a number ending in us, ms, s, m or h", s)
}
