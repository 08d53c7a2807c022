package jwt

import (
	"errors"
	"fmt"
	"hash/maphash"
	"slices"

	"github.com/weirgw/weir/internal/pmap"
	"github.com/weirgw/weir/plugins/internal/confval"
	"github.com/weirgw/weir/sdk"
)

// credIndex is the jwt credentials of a set of consumers by issuer (the
// value of the token's key claim), decoded and checked once per set.
//
// It lives with the consumers (sdk.IndexSlot), not in a filter: every
// jwt instance of a snapshot reads the same one, and a change of one
// consumer through the admin API updates it (With) in time that does not
// grow with the number of consumers, while the running snapshot keeps
// reading the old one. A request reads the index of its snapshot
// (Ctx.Consumers), so an instance is kept across consumer changes; its
// token cache is checked against that index on every hit (holds), so a
// token of a deleted or replaced consumer stops being honoured at once.
type credIndex struct {
	byIssuer *pmap.Map[string, *credential]
	// inUse counts the credentials of each algorithm (by place in
	// supportedAlgs), so that an instance checks its allow-list against
	// the index in time that does not grow with the consumers. An array:
	// With's copy of the index copies it.
	inUse [len(supportedAlgs)]int
	// cs is the set the index is for: consumer_claim names a consumer
	// of it.
	cs *sdk.Consumers
}

var slot = sdk.NewIndexSlot(func(cs *sdk.Consumers) (sdk.ConsumerIndex, error) { return buildIndex(cs) })

var issuerSeed = maphash.MakeSeed()

func hashIssuer(s string) uint64 { return maphash.String(issuerSeed, s) }

func buildIndex(cs *sdk.Consumers) (*credIndex, error) {
	x := &credIndex{byIssuer: pmap.New[string, *credential](hashIssuer, 0), cs: cs}
	// Every bad credential is reported, not just the first.
	var errs []error
	for _, cons := range cs.All() {
		errs = x.add(cons, false, errs)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return x, nil
}

// add indexes cons's credentials, appending what is wrong with them to
// errs. persistent: x's map is shared with the running index.
func (x *credIndex) add(cons *sdk.Consumer, persistent bool, errs []error) []error {
	for i, raw := range cons.Credentials.Of("jwt") {
		where := fmt.Sprintf("consumer %q: jwt credential %d: ", cons.Name, i)
		var cc credentialConfig
		if err := sdk.DecodeConfig(raw, &cc); err != nil {
			errs = append(errs, confval.Prefix(where, err))
			continue
		}
		cred, err := buildCredential(cons, &cc)
		if err != nil {
			errs = append(errs, confval.Prefix(where, err))
			continue
		}
		cred.place = i
		if prev, dup := x.byIssuer.Get(cred.issuer); dup {
			errs = append(errs, fmt.Errorf("%sissuer %q is already used by consumer %q; issuers must be unique", where, cred.issuer, prev.consumer.Name))
			continue
		}
		if persistent {
			x.byIssuer = x.byIssuer.With(cred.issuer, cred)
		} else {
			x.byIssuer.Set(cred.issuer, cred)
		}
		x.inUse[algIndex(cred.alg)]++
	}
	return errs
}

// With is the index of the consumers in which old is replaced by c.
func (x *credIndex) With(old, c *sdk.Consumer, next *sdk.Consumers) (sdk.ConsumerIndex, error) {
	y := *x
	y.cs = next
	if old != nil {
		for _, raw := range old.Credentials.Of("jwt") {
			var cc credentialConfig
			if err := sdk.DecodeConfig(raw, &cc); err != nil {
				continue // never indexed
			}
			if cred, ok := y.byIssuer.Get(cc.Issuer); ok && cred.consumer == old {
				y.byIssuer = y.byIssuer.Without(cc.Issuer)
				y.inUse[algIndex(cred.alg)]--
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

// credential returns the credential of issuer, or nil.
func (x *credIndex) credential(issuer string) *credential {
	cred, _ := x.byIssuer.Get(issuer)
	return cred
}

// holds reports whether id, cached when a token was verified, still
// stands with x's consumers: the consumer it names is the same one (not
// deleted, not replaced; for consumer_claim, still absent if it was).
// Only tokens of a changed consumer are verified again.
func (x *credIndex) holds(id *identity) bool {
	return id.named == "" || x.cs.Named(id.named) == id.consumer
}

// checkAlgorithms reports every credential whose algorithm is not in an
// instance's allow-list, in consumer and credential order of the
// message. It is asked when the instance is built and again whenever
// the consumers it serves change (CheckConsumers), so a consumer whose
// tokens an instance would refuse (bad_alg) is refused from a file and
// from the admin API alike. When every algorithm in use is allowed, the
// usual case, it costs one look at each algorithm, not each credential.
func (x *credIndex) checkAlgorithms(allowed []string) error {
	refused := false
	for i, n := range x.inUse {
		refused = refused || n > 0 && !slices.Contains(allowed, supportedAlgs[i])
	}
	if !refused {
		return nil
	}
	var errs []string
	x.byIssuer.Range(func(_ string, cred *credential) bool {
		if !slices.Contains(allowed, cred.alg) {
			errs = append(errs, fmt.Sprintf("consumer %q: jwt credential %d: algorithm %s is not in the plugin's algorithms list %v; add %s to the list, or give the credential an algorithm of the list",
				cred.consumer.Name, cred.place, cred.alg, allowed, cred.alg))
		}
		return true
	})
	slices.Sort(errs)
	out := make([]error, len(errs))
	for i, s := range errs {
		out[i] = errors.New(s)
	}
	return errors.Join(out...)
}
