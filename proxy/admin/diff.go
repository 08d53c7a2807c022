package admin

import (
	"net/http"

	"github.com/weirgw/weir/proxy"
	"github.com/weirgw/weir/proxy/config"
)

// diffConfig answers what PUT /config with the same body would change,
// object by object, after the same checks (400 with every error), and
// applies nothing. Its ETag is the config the diff was made against: a
// PUT with If-Match set to it applies exactly this diff or gets 412.
func (a *Admin) diffConfig(w http.ResponseWriter, r *http.Request) {
	cfg, name, ok := parseConfigBody(w, r)
	if !ok {
		return
	}
	snap := a.srv.Current()
	if !unmaskConfigBody(w, cfg, name, snap.Config) {
		return
	}
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
