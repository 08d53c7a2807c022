// shared_queue does what the Proxy-Wasm Go SDK's shared_queue example
// does, as two filters in one module chosen by root_id: the "receiver"
// registers the queue "http_headers" in its VM (vm_id "receiver") at
// start and, on each proxy_on_queue_ready, dequeues until the queue is
// empty, counting the items in the metric "queue_items" and logging
// them; the "sender" resolves the queue by VM ID and name and enqueues
// each request's x-item header.
package main

import (
	"errors"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const (
	receiverVMID = "receiver"
	queueName    = "http_headers"
)

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct {
	types.DefaultPluginContext
	sender bool
	items  proxywasm.MetricCounter
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	root, err := proxywasm.GetProperty([]string{"plugin_root_id"})
	if err != nil {
		proxywasm.LogCriticalf("plugin_root_id: %v", err)
		return types.OnPluginStartStatusFailed
	}
	switch string(root) {
	case "sender":
		p.sender = true
	case "receiver":
		id, err := proxywasm.RegisterSharedQueue(queueName)
		if err != nil {
			proxywasm.LogCriticalf("register: %v", err)
			return types.OnPluginStartStatusFailed
		}
		p.items = proxywasm.DefineCounterMetric("queue_items")
		proxywasm.LogInfof("queue registered, id=%d", id)
	default:
		proxywasm.LogCriticalf("unknown root_id %q", root)
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (p *plugin) OnQueueReady(id uint32) {
	for {
		data, err := proxywasm.DequeueSharedQueue(id)
		if errors.Is(err, types.ErrorStatusEmpty) {
			return
		}
		if err != nil {
			proxywasm.LogCriticalf("dequeue: %v", err)
			return
		}
		p.items.Increment(1)
		proxywasm.LogInfof("dequeued: %s", data)
	}
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext {
	if !p.sender {
		return &types.DefaultHttpContext{}
	}
	return &sender{}
}

type sender struct{ types.DefaultHttpContext }

func (*sender) OnHttpRequestHeaders(int, bool) types.Action {
	id, err := proxywasm.ResolveSharedQueue(receiverVMID, queueName)
	if err != nil {
		proxywasm.LogCriticalf("resolve: %v", err)
		_ = proxywasm.SendHttpResponse(503, nil, []byte("no queue"), -1)
		return types.ActionPause
	}
	item, err := proxywasm.GetHttpRequestHeader("x-item")
	if err != nil {
		item = "(none)"
	}
	if err := proxywasm.EnqueueSharedQueue(id, []byte(item)); err != nil {
		proxywasm.LogCriticalf("enqueue: %v", err)
		_ = proxywasm.SendHttpResponse(503, nil, []byte("queue full"), -1)
		return types.ActionPause
	}
	return types.ActionContinue
}
