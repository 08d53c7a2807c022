package proxy

import (
	"runtime"
	"sync"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// The deferred log phase. A filter that implements sdk.DeferredLogFilter
// (lua's log function) only observes the request, so it need not run on
// the request's time: a 50ms log() used to add 50ms to the client's wait,
// because finish runs before fasthttp writes the answer and fasthttp has
// no hook for "after the response is written". Instead finish copies what
// the log phase may read (sdk.Ctx.CopyForLog: request line and headers,
// response status and headers, route, consumer, IDs, values) into a
// pooled job and hands it to a small fixed pool of workers through a
// bounded queue. A full queue drops the job and counts it: the log phase
// never holds a request back. Each job pins its snapshot (refs), so the
// filters it runs are not closed under it by a reload, and Shutdown waits
// for the queued jobs as for requests in flight.
//
// Routes without deferred log filters never get here: the plain path
// allocates nothing and copies nothing.

// logQueueLen bounds the jobs waiting for a worker: a few thousand
// requests' worth of headers, which a burst of slow log functions
// absorbs. A variable for tests.
var logQueueLen = 4096

var logDropped = metrics.NewCounter(`weir_log_phase_dropped_total`)

type logJob struct {
	rc fasthttp.RequestCtx // the copy's own request and response headers
	c  *sdk.Ctx
	r  *route
}

var logJobPool = sync.Pool{New: func() any { return new(logJob) }}

// logPhase is the Server's worker pool; the zero value starts it on first
// use.
type logPhase struct {
	once sync.Once
	q    chan *logJob
	stop chan struct{}
	wg   sync.WaitGroup
}

func (lp *logPhase) start() {
	lp.q = make(chan *logJob, logQueueLen)
	lp.stop = make(chan struct{})
	n := logWorkers()
	lp.wg.Add(n)
	for range n {
		go lp.work()
	}
}

// logWorkers is the size of the pool: one per P, so slow log functions
// take at most the CPUs' share the scheduler gives them, at least 2 so
// one slow call does not stall the others.
func logWorkers() int { return max(2, runtime.GOMAXPROCS(0)) }

// deferLog queues r's deferred log filters for the request in c.
func (s *Server) deferLog(c *sdk.Ctx, r *route) {
	lp := &s.logq
	lp.once.Do(lp.start)
	j := logJobPool.Get().(*logJob)
	j.c = sdk.AcquireCtx(&j.rc)
	c.CopyForLog(j.c)
	j.r = r
	r.snap.refs.Add(1)
	select {
	case lp.q <- j:
	default:
		logDropped.Inc()
		releaseLogJob(j)
	}
}

func (lp *logPhase) work() {
	defer lp.wg.Done()
	for {
		select {
		case j := <-lp.q:
			for _, lf := range j.r.deferredLog {
				lf.OnLog(j.c)
			}
			releaseLogJob(j)
		case <-lp.stop:
			return
		}
	}
}

func releaseLogJob(j *logJob) {
	j.r.snap.refs.Add(-1)
	j.r = nil
	sdk.ReleaseCtx(j.c)
	j.c = nil
	j.rc.Request.Reset()
	j.rc.Response.Reset()
	logJobPool.Put(j)
}

// close stops the workers once the queue is empty. Shutdown calls it
// after the snapshot's refs (queued jobs included) reached zero, so
// nothing is left to run.
func (lp *logPhase) close() {
	lp.once.Do(func() {}) // never started: nothing to stop, and no start after
	if lp.stop != nil {
		close(lp.stop)
		lp.wg.Wait()
	}
}
