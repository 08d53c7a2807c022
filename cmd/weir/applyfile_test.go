package main

import (
	"log/slog"
	"sync"
	"testing"

	"github.com/weirgw/weir/proxy"
	"github.com/weirgw/weir/proxy/config"
)

// A file read again with the same objects, and no admin change since the
// last read, runs as read: the running config is the new read, not a copy
// of it. A copy (admin.WithShared) made the running config differ from
// the file's, so the next edit diffed the two whole configs as if the
// admin API had changed something, and compiled from routes whose
// Reader's hashes the copy had lost.
func TestApplyFileSameObjectsRunsTheRead(t *testing.T) {
	const file = "weir.yaml"
	doc := []byte("listen: \"127.0.0.1:0\"\nservices:\n  - {name: a, targets: [{url: \"http://127.0.0.1:9\"}]}\nroutes:\n" +
		"  - name: r0\n    paths: [\"/r0\"]\n    service: a\n  - name: r1\n    paths: [\"/r1\"]\n    service: a\n")
	rd := &config.Reader{}
	read := func() *config.Config {
		cfg, err := checkConfig(rd, file, doc, "")
		if err != nil {
			t.Fatal(err)
		}
		config.ApplyDefaults(cfg)
		return cfg
	}
	first := read()
	srv, err := proxy.New(first, file, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	again := read()
	if err := applyFile(srv, nil, &mu, slog.New(slog.DiscardHandler), first, again, file); err != nil {
		t.Fatal(err)
	}
	if srv.Current().Config != again {
		t.Fatal("the running config is a copy of the file's read, not the read")
	}
}
