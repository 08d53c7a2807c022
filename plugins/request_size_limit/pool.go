package requestsizelimit

import (
	"sync"

	"github.com/weirgw/weir/sdk"
)

type readerPool struct{ p sync.Pool }

var limitPool readerPool

func (rp *readerPool) get() *sdk.LimitedBody {
	if v, ok := rp.p.Get().(*sdk.LimitedBody); ok {
		return v
	}
	return &sdk.LimitedBody{}
}

func (rp *readerPool) put(l *sdk.LimitedBody) {
	*l = sdk.LimitedBody{}
	rp.p.Put(l)
}
