package admin

import (
	"io"
	"net/http"
	"strings"

	"github.com/weirgw/weir/proxy"
	"github.com/weirgw/weir/proxy/config"
)

// diffConfig answers what PUT /config with the same body would change,
// object by object, after the same checks (400 with every error), and
// applies nothing. Its ETag is the config the diff was made against: a
// PUT with If-Match set to it applies exactly this diff or gets 412.
func (a *Admin) diffConfig(w http.ResponseWriter, r *http.Request) {
	// Read and parsed as putConfig reads its body, so that the diff is
	// what a PUT of the same body would apply.
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	name := "admin.json"
	if ct := r.Header.Get("Content-Type"); strings.Contains(ct, "yaml") {
		name = "admin.yaml"
	}
	cfg, err := config.ParseEnv(name, body, nil)
	if err != nil {
		writeConfigErrors(w, err)
		return
	}
	snap := a.srv.Current()
	config.ApplyDefaults(cfg)
	if err := config.Validate(cfg, "admin API"); err != nil {
		writeConfigErrors(w, err)
		return
	}
	if err := proxy.Validate(cfg, "admin API"); err != nil {
		writeConfigErrors(w, err)
		return
	}
	w.Header().Set("ETag", a.etags.of(snap))
	writeJSON(w, http.StatusOK, ConfigDiff(snap.Config, cfg))
}
