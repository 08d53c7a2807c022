package requestsizelimit

import "sync"

type readerPool struct{ p sync.Pool }

var limitPool readerPool

func (rp *readerPool) get() *limitReader {
	if v, ok := rp.p.Get().(*limitReader); ok {
		return v
	}
	return &limitReader{}
}

func (rp *readerPool) put(l *limitReader) {
	*l = limitReader{}
	rp.p.Put(l)
}
