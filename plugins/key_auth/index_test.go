package keyauth

import (
	"strings"
	"testing"

	"github.com/weirgw/weir/internal/pmap"
	"github.com/weirgw/weir/sdk"
)

// owner is who holds key in cs's index ("" for nobody).
func owner(t *testing.T, cs *sdk.Consumers, key string) string {
	t.Helper()
	x, ok := cs.Indexed(slot).(*keyIndex)
	if !ok {
		t.Fatal("the consumers carry no key index")
	}
	e := x.find(digestPrefix([]byte(key)), []byte(key))
	if e == nil {
		return ""
	}
	return e.consumer.Name
}

// TestIndexFollowsConsumerChanges: a change of one consumer (the admin
// API's) updates the key index of the consumers rather than rebuilding
// it, refuses what a build from every consumer refuses, and leaves the
// index of the running consumers as it was.
func TestIndexFollowsConsumerChanges(t *testing.T) {
	cs := testConsumers()
	if _, err := New(&sdk.Build{Route: "r", Consumers: cs}, nil); err != nil {
		t.Fatal(err)
	}
	noList := func() []*sdk.Consumer { t.Fatal("the change read every consumer"); return nil }

	// Added.
	dan := consumer("dan", `{"key":"dan-key"}`)
	added, err := cs.With(nil, dan, noList)
	if err != nil {
		t.Fatal(err)
	}
	if owner(t, added, "dan-key") != "dan" || owner(t, added, "bob-key") != "bob" || owner(t, cs, "dan-key") != "" {
		t.Fatal("added: the new index lacks dan or the running one gained him")
	}

	// Replaced: the old key goes, the new one comes.
	bob2 := consumer("bob", `{"key":"bob-key-2"}`)
	replaced, err := added.With(cs.Get("bob"), bob2, noList)
	if err != nil {
		t.Fatal(err)
	}
	if owner(t, replaced, "bob-key") != "" || owner(t, replaced, "bob-key-2") != "bob" || owner(t, added, "bob-key") != "bob" {
		t.Fatal("replaced: bob's old key is still his, or the running index changed")
	}

	// Removed.
	removed, err := replaced.With(dan, nil, noList)
	if err != nil {
		t.Fatal(err)
	}
	if owner(t, removed, "dan-key") != "" || owner(t, replaced, "dan-key") != "dan" {
		t.Fatal("removed: dan's key still works, or the running index lost it")
	}

	// Refused, as a build from every consumer would refuse them.
	for _, tc := range []struct {
		c    *sdk.Consumer
		want string
	}{
		{consumer("eve", `{"key":"alice-key-1"}`), `consumers "alice" and "eve" share an API key`},
		{consumer("eve", `{"key":"e1","id":"alice-ci"}`), `id "alice-ci" is already used by consumer "alice"`},
		{consumer("eve", `{"key":"e1","id":"bob#0"}`), `id "bob#0" is already used by consumer "bob"`},
		{consumer("eve", `{"key":"e1"}`, `{"key":"e1"}`), `key_auth[1] repeats the key of key_auth[0]`},
		{consumer("eve", `{"id":"x"}`), `key must be set`},
		{consumer("eve", `"just-a-key"`), `a credential is an object`},
	} {
		if _, err := cs.With(nil, tc.c, noList); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.c.Credentials.Of("key_auth"), err, tc.want)
		}
	}
	// A new consumer whose default id another consumer wrote out.
	taken := sdk.NewConsumers([]*sdk.Consumer{consumer("x", `{"key":"x1","id":"zed#0"}`)})
	if _, err := sdk.IndexOf[*keyIndex](taken, slot); err != nil {
		t.Fatal(err)
	}
	if _, err := taken.With(nil, consumer("zed", `{"key":"z1"}`), noList); err == nil || !strings.Contains(err.Error(), `default id "zed#0" is already used by consumer "x"`) {
		t.Errorf("default id taken: %v", err)
	}
}

// TestRequestReadsTheSnapshotsIndex: a filter kept across a change of
// consumers finds the keys of the consumers its request runs with.
func TestRequestReadsTheSnapshotsIndex(t *testing.T) {
	cs := testConsumers()
	f, err := New(&sdk.Build{Route: "r", Consumers: cs}, nil)
	if err != nil {
		t.Fatal(err)
	}
	next, err := cs.With(nil, consumer("dan", `{"key":"dan-key"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &sdk.Ctx{Consumers: next}
	if x := f.(*filter).index(c); x != next.Indexed(slot) {
		t.Fatal("the filter read the index it was built with, not the request's")
	}
	if x := f.(*filter).index(&sdk.Ctx{}); x != f.(*filter).keys {
		t.Fatal("outside the proxy the filter should read its own index")
	}
}

// TestIndexChainsSharedPrefixes: keys whose digests share their first 8
// bytes (the index's key) are chained; each is found by its own key,
// a key of the chain is a duplicate only if equal, and removing one
// leaves the others, in a copy of the chain the running index does not
// see.
func TestIndexChainsSharedPrefixes(t *testing.T) {
	a, b, c := &sdk.Consumer{Name: "a"}, &sdk.Consumer{Name: "b"}, &sdk.Consumer{Name: "c"}
	x := &keyIndex{keys: pmap.New[uint64, *entry](hashPrefix, 0)}
	// Three keys under one index key, as a collision would put them.
	var head *entry
	for _, e := range []struct {
		c   *sdk.Consumer
		key string
	}{{a, "ka"}, {b, "kb"}, {c, "kc"}} {
		head = &entry{key: e.key, consumer: e.c, id: e.c.Name + "#0", next: head}
	}
	x.keys.Set(7, head)
	for key, want := range map[string]*sdk.Consumer{"ka": a, "kb": b, "kc": c, "kd": nil, "k": nil} {
		if e := x.find(7, []byte(key)); (e == nil && want != nil) || (e != nil && e.consumer != want) {
			t.Fatalf("find(%q) = %+v, want %v", key, e, want)
		}
	}
	if x.find(8, []byte("ka")) != nil {
		t.Fatal("found under another index key")
	}
	rest := withoutEntry(head, b, "kb")
	y := &keyIndex{keys: x.keys.With(7, rest)}
	if y.find(7, []byte("kb")) != nil || y.find(7, []byte("ka")) == nil || y.find(7, []byte("kc")) == nil {
		t.Fatal("removing kb did not leave exactly ka and kc")
	}
	if x.find(7, []byte("kb")) == nil {
		t.Fatal("the running index lost kb")
	}
	if withoutEntry(head, a, "kb") != head {
		t.Fatal("a key of another consumer was removed")
	}
	if got := withoutEntry(withoutEntry(withoutEntry(head, a, "ka"), b, "kb"), c, "kc"); got != nil {
		t.Fatalf("chain not empty after removing every key: %+v", got)
	}
}
