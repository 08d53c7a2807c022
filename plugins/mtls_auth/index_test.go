package mtlsauth

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/weirgw/weir/sdk"
)

// TestIndexFollowsConsumerChanges: a change of one consumer (the admin
// API's) updates the index of the consumers rather than rebuilding it,
// refuses what a build from every consumer refuses, and leaves the index
// of the running consumers as it was.
func TestIndexFollowsConsumerChanges(t *testing.T) {
	bob := newCert(t, "bob-box", nil, "spiffe://t/bob")
	fp := sha256.Sum256(bob.Raw)
	cs := sdk.NewConsumers([]*sdk.Consumer{
		consumer("ann", `{"subject":"ann"}`),
		consumer("bob", `{"san":"spiffe://t/bob","id":"bob-uri"}`),
	})
	fl, err := New(&sdk.Build{Route: "r", Consumers: cs}, []byte(`{"match":["subject","san","fingerprint"]}`))
	if err != nil {
		t.Fatal(err)
	}
	f := fl.(*filter)
	noList := func() []*sdk.Consumer { t.Fatal("the change read every consumer"); return nil }
	who := func(cs *sdk.Consumers, cert *x509.Certificate) string {
		t.Helper()
		x, ok := cs.Indexed(slot).(*index)
		if !ok {
			t.Fatal("the consumers carry no mtls_auth index")
		}
		if e := f.lookup(x, cert); e != nil {
			return e.consumer.Name
		}
		return ""
	}

	// Added, by fingerprint.
	carl := consumer("carl", `{"fingerprint":"`+hex.EncodeToString(fp[:])+`"}`)
	added, err := cs.With(nil, carl, noList)
	if err != nil {
		t.Fatal(err)
	}
	if who(added, bob) != "bob" { // subject, then san: bob's URI comes first
		t.Fatalf("added: bob's certificate is %q's", who(added, bob))
	}
	onlyFP, err := New(&sdk.Build{Route: "r", Consumers: added}, []byte(`{"match":["fingerprint"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if e := onlyFP.(*filter).lookup(added.Indexed(slot).(*index), bob); e == nil || e.consumer.Name != "carl" {
		t.Fatal("added: carl's fingerprint does not identify him")
	}
	if e := onlyFP.(*filter).lookup(cs.Indexed(slot).(*index), bob); e != nil {
		t.Fatal("added: the running index gained carl")
	}

	// Replaced: ann's subject goes, her DNS name comes.
	ann2 := consumer("ann", `{"san":"ann.clients.test"}`)
	replaced, err := added.With(cs.Get("ann"), ann2, noList)
	if err != nil {
		t.Fatal(err)
	}
	annByName := newCert(t, "someone-else", []string{"Ann.Clients.Test"})
	if who(replaced, annByName) != "ann" || who(replaced, newCert(t, "ann", nil)) != "" || who(added, newCert(t, "ann", nil)) != "ann" {
		t.Fatal("replaced: ann's old subject still works, her DNS name does not, or the running index changed")
	}

	// Removed, then the identifier is free again.
	removed, err := replaced.With(carl, nil, noList)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := removed.With(nil, consumer("eve", `{"fingerprint":"`+hex.EncodeToString(fp[:])+`"}`), noList); err != nil {
		t.Fatalf("carl's fingerprint after his removal: %v", err)
	}

	// Refused, as a build from every consumer would refuse them.
	for _, tc := range []struct {
		c    *sdk.Consumer
		want string
	}{
		{consumer("eve", `{"san":"spiffe://t/bob"}`), `consumers "bob" and "eve" share the client certificate san "spiffe://t/bob"`},
		{consumer("eve", `{"subject":"e1","id":"bob-uri"}`), `id "bob-uri" is already used by consumer "bob"`},
		{consumer("eve", `{"subject":"e1"}`, `{"subject":"e1"}`), `mtls_auth[1] repeats the subject of mtls_auth[0]`},
		{consumer("eve", `{"subject":"CN=e1"}`), `consumer "eve": mtls_auth[0]: subject "CN=e1": give the common name alone`},
		{consumer("eve", `{"id":"x"}`), `set subject, san or fingerprint`},
	} {
		if _, err := cs.With(nil, tc.c, noList); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.c.Credentials.Of("mtls_auth"), err, tc.want)
		}
	}
}
