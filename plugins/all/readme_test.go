package all_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weirgw/weir/sdk"
)

// runsOthersCode are the plugins that run code their operator brings
// (scripts, modules written for other gateways): their README says what
// of the other platform's API works.
var runsOthersCode = map[string]bool{"lua": true, "wasm": true}

// TestPluginREADMEsFollowTheTemplate: every registered plugin has a
// README in one template, like CoreDNS's: the title, then What, Config,
// Metrics, Example and Cost sections (other sections may come between),
// and Compatibility for a plugin that runs others' code.
func TestPluginREADMEsFollowTheTemplate(t *testing.T) {
	for _, name := range sdk.Names() {
		if strings.HasPrefix(name, "test_") {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("..", name, "README.md"))
		if err != nil {
			t.Errorf("plugin %s: %v", name, err)
			continue
		}
		var heads []string
		for _, line := range strings.Split(string(raw), "\n") {
			if h, ok := strings.CutPrefix(line, "## "); ok {
				heads = append(heads, h)
			}
		}
		if !strings.HasPrefix(string(raw), "# "+name+"\n") {
			t.Errorf("plugin %s: README does not start with '# %s'", name, name)
		}
		if len(heads) == 0 || heads[0] != "What" {
			t.Errorf("plugin %s: the first section must be '## What', got %q", name, heads)
		}
		want := []string{"What", "Config", "Metrics", "Example", "Cost"}
		if runsOthersCode[name] {
			want = append(want, "Compatibility")
		}
		for _, w := range want {
			found := false
			for _, h := range heads {
				if h == w {
					found = true
				}
			}
			if !found {
				t.Errorf("plugin %s: README has no '## %s' section (sections: %q)", name, w, heads)
			}
		}
	}
}
