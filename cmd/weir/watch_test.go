package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// startWatch watches file until the test ends; the channel gets
// one value per onChange.
func startWatch(t *testing.T, file string) (*fileWatch, <-chan struct{}) {
	t.Helper()
	changed := make(chan struct{}, 16)
	stop := make(chan struct{})
	done := make(chan struct{})
	fw := newFileWatch(file, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go func() {
		defer close(done)
		fw.run(stop, func() { changed <- struct{}{} })
	}()
	t.Cleanup(func() { close(stop); <-done })
	return fw, changed
}

// expectChanges waits long enough for the poll to have run twice and
// checks that onChange ran exactly n times.
func expectChanges(t *testing.T, changed <-chan struct{}, n int, what string) {
	t.Helper()
	deadline := time.After(2*watchPoll + 2*watchSettle)
	got := 0
	for {
		select {
		case <-changed:
			got++
		case <-deadline:
			if got != n {
				t.Fatalf("%s: onChange ran %d times, want %d", what, got, n)
			}
			return
		}
	}
}

func mustWrite(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustLink(t *testing.T, target, name string) {
	t.Helper()
	tmp := name + "_tmp"
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// A process started on a ConfigMap volume: the file is a link from the
// start, and each ..data flip is one change.
func TestWatchFileConfigMap(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"..v1", "..v2", "..v3"} {
		if err := os.Mkdir(filepath.Join(dir, v), 0o700); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(dir, v, "gateway.yaml"), "version: "+v+"\n")
	}
	mustLink(t, "..v1", filepath.Join(dir, "..data"))
	mustLink(t, "..data/gateway.yaml", filepath.Join(dir, "gateway.yaml"))
	_, changed := startWatch(t, filepath.Join(dir, "gateway.yaml"))

	mustLink(t, "..v2", filepath.Join(dir, "..data"))
	expectChanges(t, changed, 1, "flip to v2")
	if err := os.RemoveAll(filepath.Join(dir, "..v1")); err != nil {
		t.Fatal(err)
	}
	expectChanges(t, changed, 0, "removal of the old folder")
	mustLink(t, "..v3", filepath.Join(dir, "..data"))
	expectChanges(t, changed, 1, "flip to v3")
}

// A file that is a link to a file in another folder, edited in place there.
func TestWatchFileLinkTarget(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	target := filepath.Join(other, "real.yaml")
	mustWrite(t, target, "a: 1\n")
	mustLink(t, target, filepath.Join(dir, "gateway.yaml"))
	_, changed := startWatch(t, filepath.Join(dir, "gateway.yaml"))

	mustWrite(t, target, "a: 2\n")
	expectChanges(t, changed, 1, "edit of the link's target")
}

// Events and metadata changes that leave the content as it was call
// nothing: a touch, a rewrite with the same bytes, a same-content
// replacement.
func TestWatchFileSameContent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	mustWrite(t, file, "a: 1\n")
	_, changed := startWatch(t, file)

	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	expectChanges(t, changed, 0, "touch")
	mustWrite(t, file, "a: 1\n")
	expectChanges(t, changed, 0, "same bytes rewritten")
	mustWrite(t, file+".new", "a: 1\n")
	if err := os.Rename(file+".new", file); err != nil {
		t.Fatal(err)
	}
	expectChanges(t, changed, 0, "same bytes renamed over")
	mustWrite(t, file, "a: 2\n")
	expectChanges(t, changed, 1, "a real edit")
}

// Without file-system events (NFS, or inotify unavailable) the metadata
// poll alone sees an edit, and a touch reads the file once.
func TestWatchFilePollFallback(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	mustWrite(t, file, "a: 1\n")
	fw := newFileWatch(file, slog.New(slog.NewTextHandler(io.Discard, nil)))
	fw.w.Close()
	fw.w = nil // as when inotify cannot be had
	if fw.stale() {
		t.Fatal("an untouched file is stale")
	}
	mustWrite(t, file, "a: 22\n")
	if !fw.stale() {
		t.Fatal("an edit that changed the size is not stale")
	}
	if !fw.check() {
		t.Fatal("check misses the edit")
	}
	if fw.stale() || fw.check() {
		t.Fatal("the same edit is seen twice")
	}

	changed := make(chan struct{}, 16)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		fw.run(stop, func() { changed <- struct{}{} })
	}()
	defer func() { close(stop); <-done }()
	mustWrite(t, file, "a: 333\n")
	expectChanges(t, changed, 1, "edit seen by the poll")
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	expectChanges(t, changed, 0, "touch seen by the poll")
}

// A SIGHUP reload rebases the watch before it reads the file: the edit it
// applies is not applied again when the edit's event arrives, and a later
// edit still is.
func TestWatchFileRebase(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	mustWrite(t, file, "a: 1\n")
	fw, changed := startWatch(t, file)

	mustWrite(t, file, "a: 2\n")
	fw.rebase()
	expectChanges(t, changed, 0, "edit applied by SIGHUP")
	mustWrite(t, file, "a: 3\n")
	expectChanges(t, changed, 1, "edit after the SIGHUP")
}
