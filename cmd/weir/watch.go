package main

import (
	"crypto/sha256"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/weirgw/weir/proxy/config"
)

const (
	// watchSettle is how long the watcher waits after the first file-system
	// event before reading the file: an editor's save or a ConfigMap flip
	// is a burst of events, and one read after the burst sees the result.
	watchSettle = 100 * time.Millisecond
	// watchPoll is how often the file's metadata is compared as well, for
	// file systems whose changes inotify does not report (NFS or FUSE
	// mounts changed by another machine) or when inotify cannot be used.
	// A stat costs no read of the file: only a changed size, modification
	// time or identity leads to reading it.
	watchPoll = 500 * time.Millisecond
)

// fileWatch calls a function when the content of the config file
// changes. It watches the file's folder (and, when the file is a symbolic
// link, its target's folder) for file-system events, so that edits in
// place, replacements by rename (editors) and a Kubernetes ConfigMap's
// "..data" link flip are all seen within watchSettle; a metadata poll
// every watchPoll is the fallback. The content is hashed so that an event
// or a touch that leaves it unchanged calls nothing.
type fileWatch struct {
	file string
	log  *slog.Logger
	w    *fsnotify.Watcher // nil: polling only
	dirs map[string]bool   // folders being watched
	// names are the paths whose events concern the file: the file itself,
	// the target of its link, and the "..data" link of a ConfigMap folder.
	names [3]string

	mu   sync.Mutex  // guards sum and info: rebase runs on another goroutine
	sum  []byte      // sha256 of the content; nil when it could not be read
	info os.FileInfo // nil when the file could not be stat'ed
}

// newFileWatch starts watching file and takes its current content as the
// one already applied.
func newFileWatch(file string, log *slog.Logger) *fileWatch {
	file, _ = filepath.Abs(file) // events carry absolute names when the folder is absolute
	fw := &fileWatch{file: file, log: log}
	if w, err := fsnotify.NewWatcher(); err != nil {
		log.Warn("cannot watch the config file for changes; comparing its size and time every 500ms instead",
			"file", file, "error", err)
	} else {
		fw.w, fw.dirs = w, map[string]bool{}
	}
	fw.follow()
	fw.sum, fw.info = fw.read()
	return fw
}

// rebase reads the file for a SIGHUP reload and takes what it read as
// applied, without calling onChange, so that the edit the reload applies
// is not applied a second time when the event arrives. A change after
// this read is still seen, at the cost of one reload too many at worst.
// It returns what config.ReadFile returns and the content's SHA-256: the
// reload reads and hashes the file this once (at 10,000 routes each read
// and hash of the file was a few milliseconds of the reload).
func (fw *fileWatch) rebase() ([]byte, [sha256.Size]byte, error) {
	info, statErr := os.Stat(fw.file)
	data, err := config.ReadFile(fw.file)
	if err != nil {
		return nil, [sha256.Size]byte{}, err
	}
	sum := sha256.Sum256(data)
	if statErr == nil {
		fw.mu.Lock()
		defer fw.mu.Unlock()
		fw.sum, fw.info = sum[:], info
	}
	return data, sum, nil
}

// run calls onChange for each change until stop is closed.
func (fw *fileWatch) run(stop <-chan struct{}, onChange func()) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if fw.w != nil {
		defer fw.w.Close()
		events, errs = fw.w.Events, fw.w.Errors
	}
	poll := time.NewTicker(watchPoll)
	defer poll.Stop()
	settle := time.NewTimer(0)
	<-settle.C
	settling := false
	for {
		select {
		case <-stop:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if fw.relevant(ev.Name) && !settling {
				settle.Reset(watchSettle)
				settling = true
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// A lost event (queue overflow) may have been ours: look.
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				fw.log.Warn("watching the config file", "file", fw.file, "error", err)
			}
			if !settling {
				settle.Reset(watchSettle)
				settling = true
			}
		case <-settle.C:
			settling = false
			fw.follow()
			if fw.check() {
				onChange()
			}
		case <-poll.C:
			// A change the poll sees settles like an event's, which
			// leaves a SIGHUP sent right after an edit the time to
			// rebase: the edit is then applied once, not twice.
			if !settling && fw.stale() {
				settle.Reset(watchSettle)
				settling = true
			}
		}
	}
}

// follow watches the folders that hold the file and the file its link
// resolves to now, and stops watching folders that no longer do. A
// ConfigMap's gateway.yaml links to ..data/gateway.yaml and ..data to a
// timestamped folder: the flip replaces ..data, an event in the file's own
// folder; a plain link to a file elsewhere is edited in the target's folder.
func (fw *fileWatch) follow() {
	dir := filepath.Dir(fw.file)
	fw.names = [3]string{fw.file, filepath.Join(dir, "..data")}
	want := map[string]bool{dir: true}
	if target, err := filepath.EvalSymlinks(fw.file); err == nil && target != fw.file {
		fw.names[2] = target
		want[filepath.Dir(target)] = true
	}
	if fw.w == nil {
		return
	}
	for d := range want {
		if fw.dirs[d] {
			continue
		}
		if err := fw.w.Add(d); err != nil {
			fw.log.Warn("cannot watch a folder of the config file; changes there are seen by polling every 500ms",
				"folder", d, "error", err)
			continue
		}
		fw.dirs[d] = true
	}
	for d := range fw.dirs {
		if !want[d] {
			_ = fw.w.Remove(d) // fails when the folder is gone, which removed the watch already
			delete(fw.dirs, d)
		}
	}
}

// relevant reports whether an event on name may change the file's content.
func (fw *fileWatch) relevant(name string) bool {
	for _, n := range fw.names {
		if n != "" && n == name {
			return true
		}
	}
	return false
}

// stale reports whether the file's size, modification time or identity
// changed since it was last read: a poll of an idle file is one stat.
func (fw *fileWatch) stale() bool {
	info, err := os.Stat(fw.file)
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return err == nil && (fw.info == nil || !sameFileInfo(info, fw.info))
}

// check reads the file and reports whether its content changed since the
// last check.
func (fw *fileWatch) check() bool {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	sum, info := fw.read()
	if sum == nil {
		return false // missing or unreadable in the middle of a replacement: look again at the next event or poll
	}
	fw.info = info
	if string(sum) == string(fw.sum) {
		return false
	}
	fw.sum = sum
	return true
}

// read returns the hash of the file's content and its metadata, nil when
// it cannot be read. The metadata is taken first, so that a change after
// it makes the file stale for the next poll.
func (fw *fileWatch) read() ([]byte, os.FileInfo) {
	info, err := os.Stat(fw.file)
	if err != nil {
		return nil, nil
	}
	b, err := os.ReadFile(fw.file)
	if err != nil {
		return nil, nil
	}
	h := sha256.Sum256(b)
	return h[:], info
}

func sameFileInfo(a, b os.FileInfo) bool {
	return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && os.SameFile(a, b)
}
