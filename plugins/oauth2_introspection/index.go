package oauth2introspection

import (
	"errors"
	"fmt"
	"hash/maphash"

	"github.com/weirgw/weir/internal/pmap"
	"github.com/weirgw/weir/plugins/internal/confval"
	"github.com/weirgw/weir/sdk"
)

// consumerIndex maps introspection results to the consumers of a set:
// explicit credentials by sub and by client_id, and (match_consumer_names)
// the consumers' names.
//
// It lives with the consumers (sdk.IndexSlot), not in a filter: every
// instance of a snapshot reads the same one, and a change of one consumer
// through the admin API updates it (With) in time that does not grow with
// the number of consumers, while the running snapshot keeps reading the
// old one. A request reads the index of its snapshot (Ctx.Consumers), so
// an instance is kept across consumer changes; a cached answer matched
// with another index is matched again (filter.consumerOf), so a deleted
// consumer's token stops being attributed to it at once.
type consumerIndex struct {
	bySub, byClient *pmap.Map[string, *sdk.Consumer]
	cs              *sdk.Consumers // the set the index is for: names
}

var slot = sdk.NewIndexSlot(func(cs *sdk.Consumers) (sdk.ConsumerIndex, error) { return buildIndex(cs) })

var seed = maphash.MakeSeed()

func hashString(s string) uint64 { return maphash.String(seed, s) }

func buildIndex(cs *sdk.Consumers) (*consumerIndex, error) {
	ix := &consumerIndex{
		bySub:    pmap.New[string, *sdk.Consumer](hashString, 0),
		byClient: pmap.New[string, *sdk.Consumer](hashString, 0),
		cs:       cs,
	}
	// Every bad credential is reported, not just the first.
	var errs []error
	for _, cons := range cs.All() {
		errs = ix.add(cons, false, errs)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ix, nil
}

// add indexes cons's credentials, appending what is wrong with them to
// errs. persistent: ix's maps are shared with the running index.
func (ix *consumerIndex) add(cons *sdk.Consumer, persistent bool, errs []error) []error {
	for i, raw := range cons.Credentials.Of("oauth2_introspection") {
		where := fmt.Sprintf("consumer %q: oauth2_introspection credential %d", cons.Name, i)
		var cc credentialConfig
		if err := sdk.DecodeConfig(raw, &cc); err != nil {
			errs = append(errs, confval.Prefix(where+": ", err))
			continue
		}
		if (cc.Sub == "") == (cc.ClientID == "") {
			errs = append(errs, fmt.Errorf("%s: set exactly one of sub or client_id", where))
			continue
		}
		m, v := &ix.bySub, cc.Sub
		if cc.ClientID != "" {
			m, v = &ix.byClient, cc.ClientID
		}
		if prev, dup := (*m).Get(v); dup {
			errs = append(errs, fmt.Errorf("%s: %q already identifies consumer %q", where, v, prev.Name))
			continue
		}
		if persistent {
			*m = (*m).With(v, cons)
		} else {
			(*m).Set(v, cons)
		}
	}
	return errs
}

// With is the index of the consumers in which old is replaced by c.
func (ix *consumerIndex) With(old, c *sdk.Consumer, next *sdk.Consumers) (sdk.ConsumerIndex, error) {
	y := *ix
	y.cs = next
	if old != nil {
		for _, raw := range old.Credentials.Of("oauth2_introspection") {
			var cc credentialConfig
			if err := sdk.DecodeConfig(raw, &cc); err != nil {
				continue // never indexed
			}
			m, v := &y.bySub, cc.Sub
			if cc.ClientID != "" {
				m, v = &y.byClient, cc.ClientID
			}
			if cons, ok := (*m).Get(v); ok && cons == old {
				*m = (*m).Without(v)
			}
		}
	}
	if c != nil {
		if errs := y.add(c, true, nil); len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	return &y, nil
}

// match returns the consumer for a token's sub and client_id, or nil:
// explicit credentials first, then (names) consumer names.
func (ix *consumerIndex) match(sub, clientID string, names bool) *sdk.Consumer {
	if sub != "" {
		if c, _ := ix.bySub.Get(sub); c != nil {
			return c
		}
	}
	if clientID != "" {
		if c, _ := ix.byClient.Get(clientID); c != nil {
			return c
		}
	}
	if names {
		if c := ix.cs.Named(sub); c != nil && sub != "" {
			return c
		}
		if c := ix.cs.Named(clientID); c != nil && clientID != "" {
			return c
		}
	}
	return nil
}
