// Package all compiles every built-in plugin into the binary: importing it
// registers them with the sdk.
package all

import (
	_ "github.com/weirgw/weir/plugins/acl"
	_ "github.com/weirgw/weir/plugins/cache"
	_ "github.com/weirgw/weir/plugins/cors"
	_ "github.com/weirgw/weir/plugins/ip_restriction"
	_ "github.com/weirgw/weir/plugins/jwt"
	_ "github.com/weirgw/weir/plugins/key_auth"
	_ "github.com/weirgw/weir/plugins/lua"
	_ "github.com/weirgw/weir/plugins/mtls_auth"
	_ "github.com/weirgw/weir/plugins/oauth2_introspection"
	_ "github.com/weirgw/weir/plugins/rate_limit"
	_ "github.com/weirgw/weir/plugins/request_size_limit"
	_ "github.com/weirgw/weir/plugins/request_transformer"
	_ "github.com/weirgw/weir/plugins/response_transformer"
	_ "github.com/weirgw/weir/plugins/wasm"
)
