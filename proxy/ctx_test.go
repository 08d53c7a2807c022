package proxy

import (
	"context"
	"time"
)

func ctxTimeout(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	go func() { time.Sleep(d); cancel() }()
	return ctx
}
