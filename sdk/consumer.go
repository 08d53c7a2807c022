package sdk

import (
	"errors"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/weirgw/weir/internal/pmap"
)

// Consumer is an identified client of the gateway (docs/config.md, consumers).
// Consumers are immutable once a snapshot is built and may be shared freely.
type Consumer struct {
	Name   string
	Groups []string
	// GroupsHeader is Groups joined with ",", precomputed for the
	// X-Consumer-Groups header.
	GroupsHeader string
	// Credentials holds each credential list by plugin name ("key_auth",
	// "jwt", ...) as raw JSON objects (Credentials.Of); the plugin that
	// owns the kind decodes and indexes them.
	Credentials Credentials
}

// InGroup reports whether the consumer belongs to group g.
func (c *Consumer) InGroup(g string) bool {
	if c == nil {
		return false
	}
	for _, x := range c.Groups {
		if x == g {
			return true
		}
	}
	return false
}

// Consumers is the immutable set of consumers of a snapshot. A change of
// one consumer through the admin API derives the next set with With,
// which shares everything else with this one: the name index is a
// persistent map, and the plugins' credential indexes (IndexSlot) are
// updated rather than rebuilt, so the change costs the same at a hundred
// consumers as at a million (issue 17).
type Consumers struct {
	byName *pmap.Map[string, *Consumer]
	// list is every consumer in config order: given to NewConsumers, or
	// made on first use by listFn for a set derived with With (only
	// plugins that rebuild from every consumer ask for it).
	list     []*Consumer
	listFn   func() []*Consumer
	listOnce sync.Once
	indexes  []indexCell // by IndexSlot.id
	// read is set by All and Get: a filter built while it was set holds
	// something it read from the consumers (see ReadSince).
	read atomic.Bool
	// slots has a bit for every IndexSlot asked for since ReadSince.
	slots atomic.Uint64
}

type indexCell struct {
	mu   sync.Mutex
	done atomic.Bool // idx and err are set
	idx  ConsumerIndex
	err  error
}

var nameSeed = maphash.MakeSeed()

func hashName(s string) uint64 { return maphash.String(nameSeed, s) }

// NewConsumers indexes list by name. Names are assumed unique (the config
// validator guarantees it).
func NewConsumers(list []*Consumer) *Consumers {
	byName := pmap.New[string, *Consumer](hashName, len(list))
	for _, c := range list {
		prepare(c)
		byName.Set(c.Name, c)
	}
	return &Consumers{list: list, byName: byName, indexes: newCells()}
}

func prepare(c *Consumer) {
	if c.GroupsHeader == "" && len(c.Groups) > 0 {
		c.GroupsHeader = strings.Join(c.Groups, ",")
	}
}

func newCells() []indexCell {
	slotsMu.Lock()
	n := len(slots)
	slotsMu.Unlock()
	return make([]indexCell, n)
}

// All returns every consumer; callers must not modify the slice.
func (cs *Consumers) All() []*Consumer {
	if cs == nil {
		return nil
	}
	cs.markRead()
	return cs.all()
}

func (cs *Consumers) all() []*Consumer {
	cs.listOnce.Do(func() {
		if cs.list == nil && cs.listFn != nil {
			cs.list = cs.listFn()
		}
	})
	return cs.list
}

// Get returns the consumer named name, or nil.
func (cs *Consumers) Get(name string) *Consumer {
	if cs == nil {
		return nil
	}
	cs.markRead()
	c, _ := cs.byName.Get(name)
	return c
}

// Named returns the consumer named name, or nil, as Get does, but is not
// a read the filter keeps (ReadSince): the request-time lookup of a
// filter that follows consumer changes through Ctx.Consumers.
func (cs *Consumers) Named(name string) *Consumer {
	if cs == nil {
		return nil
	}
	c, _ := cs.byName.Get(name)
	return c
}

// markRead sets read, without writing a cache line every request reads
// once it is set.
func (cs *Consumers) markRead() {
	if !cs.read.Load() {
		cs.read.Store(true)
	}
}

// Len is the number of consumers.
func (cs *Consumers) Len() int {
	if cs == nil {
		return 0
	}
	return cs.byName.Len()
}

// ReadSince reports what the filters built since the last call read from
// cs: whether they read consumers (All, Get), which would go stale when a
// consumer changes, and the bit set of the IndexSlots they use, which
// With keeps current. The proxy calls it around each route's build to
// tell which plugin instances a consumer change leaves valid.
func (cs *Consumers) ReadSince() (read bool, slots uint64) {
	if cs == nil {
		return false, 0
	}
	return cs.read.Swap(false), cs.slots.Swap(0)
}

// With returns the set in which old (nil: none) is replaced by c (nil:
// old is removed), with every credential index built so far updated; an
// index that refuses the change (a key another consumer holds) fails it
// with the index's error. list gives every consumer of the new set in
// config order, for the plugins that ask (All); it is called at most
// once. cs is unchanged.
func (cs *Consumers) With(old, c *Consumer, list func() []*Consumer) (*Consumers, error) {
	byName := cs.byName
	if old != nil {
		byName = byName.Without(old.Name)
	}
	if c != nil {
		prepare(c)
		byName = byName.With(c.Name, c)
	}
	next := &Consumers{byName: byName, listFn: list, indexes: newCells()}
	var errs []error
	for i := range cs.indexes {
		if i >= len(next.indexes) {
			break
		}
		cell := &cs.indexes[i]
		if !cell.done.Load() {
			continue
		}
		if cell.err != nil {
			errs = append(errs, cell.err)
			continue
		}
		idx, err := cell.idx.With(old, c, next)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		next.indexes[i].idx = idx
		next.indexes[i].done.Store(true)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return next, nil
}

// ConsumerIndex is a structure a plugin derives from every consumer's
// credentials (key_auth's map of keys), kept with the Consumers it was
// built from and carried to the sets derived from them.
type ConsumerIndex interface {
	// With returns the index of the set in which consumer old (nil:
	// none) is replaced by c (nil: old is removed), or the error that
	// makes the change invalid (named as a build of the index from every
	// consumer would name it). The receiver is unchanged: the running
	// snapshot still reads it.
	// next is the new set (its other indexes are not ready yet).
	With(old, c *Consumer, next *Consumers) (ConsumerIndex, error)
}

// ConsumersChecker is a filter that serves only some of the consumers
// its credential index holds (jwt: a credential whose algorithm is not in
// the instance's allow-list). New checks the consumers it is built with;
// a filter kept when the consumers change (a one-route reload, an admin
// write of one consumer) is not built again, so the proxy asks it with
// CheckConsumers whether it takes the new set, and its error refuses the
// change as New's would have. It should cost little when nothing is
// refused: it runs for every kept instance on every change.
type ConsumersChecker interface {
	CheckConsumers(cs *Consumers) error
}

// IndexSlot names one kind of ConsumerIndex; a plugin makes one at init.
type IndexSlot struct {
	id    int
	build func(*Consumers) (ConsumerIndex, error)
}

var (
	slotsMu sync.Mutex
	slots   []*IndexSlot
)

// NewIndexSlot registers an index kind built from every consumer by
// build. Call it at init (at most 64 kinds).
func NewIndexSlot(build func(*Consumers) (ConsumerIndex, error)) *IndexSlot {
	slotsMu.Lock()
	defer slotsMu.Unlock()
	if len(slots) == 64 {
		panic("sdk: more than 64 consumer index slots")
	}
	s := &IndexSlot{id: len(slots), build: build}
	slots = append(slots, s)
	return s
}

// Index returns cs's index of slot s, built from every consumer on the
// first call (which New makes, so that a request never builds one) and
// kept current by With after that. A filter that reads its credentials
// only through Index at request time (Ctx.Consumers) stays valid when a
// consumer changes.
func (cs *Consumers) Index(s *IndexSlot) (ConsumerIndex, error) {
	if cs == nil || s.id >= len(cs.indexes) {
		return nil, errors.New("sdk: consumer index slot registered after the consumers were built")
	}
	cs.slots.Or(1 << s.id)
	cell := &cs.indexes[s.id]
	if !cell.done.Load() {
		cell.mu.Lock()
		if !cell.done.Load() {
			// Reading every consumer to build the index is not a read
			// the filter keeps: the index itself follows changes.
			was := cs.read.Load()
			cell.idx, cell.err = s.build(cs)
			cs.read.Store(was)
			cell.done.Store(true)
		}
		cell.mu.Unlock()
	}
	return cell.idx, cell.err
}

// IndexOf is cs.Index(s) as the plugin's type T; with no consumers (a
// filter built outside a snapshot) it is the index of none.
func IndexOf[T ConsumerIndex](cs *Consumers, s *IndexSlot) (T, error) {
	var idx ConsumerIndex
	var err error
	if cs == nil {
		idx, err = s.build(nil)
	} else {
		idx, err = cs.Index(s)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return idx.(T), nil
}

// Indexed returns the index of slot s that Index built, or nil: the
// request-time read (through Ctx.Consumers), which neither builds nor
// records anything.
func (cs *Consumers) Indexed(s *IndexSlot) ConsumerIndex {
	if cs == nil || s.id >= len(cs.indexes) || !cs.indexes[s.id].done.Load() {
		return nil
	}
	return cs.indexes[s.id].idx
}

// Slots calls f with every IndexSlot in the bit set (ReadSince).
func Slots(set uint64, f func(*IndexSlot)) {
	slotsMu.Lock()
	list := slots
	slotsMu.Unlock()
	for _, s := range list {
		if set&(1<<s.id) != 0 {
			f(s)
		}
	}
}
