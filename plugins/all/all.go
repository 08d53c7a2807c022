// Package all compiles every built-in plugin into the binary: importing it
// registers them with the sdk.
package all

import (
	_ "github.com/weirgw/weir/plugins/request_size_limit"
)
