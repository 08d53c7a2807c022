package wasm

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"net"
	"net/netip"
)

// Properties (proxy_get_property) follow Envoy's attribute names
// (https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/advanced/attributes)
// for the few that have a meaning here, plus weir.* ones. A path arrives
// as segments separated by NUL bytes ("request\0path"), as the SDKs
// serialise it; "request.path" is accepted too. Integers are 8 bytes,
// little-endian, as in Envoy.
//
//	request.path       :path (normalized path, re-encoded, and query)
//	request.url_path   the same without the query
//	request.host       the Host header
//	request.method     the method
//	request.scheme     http or https
//	request.protocol   HTTP/1.1 or HTTP/1.0
//	request.query      the raw query string
//	request.id         the X-Request-Id
//	request.useragent  the User-Agent header
//	request.referer    the Referer header
//	source.address     the client's ip:port
//	source.port        the client's port (int)
//	response.code      the response status (int), from the response phase
//	route_name         the route (also xds.route_name)
//	cluster_name       the route's service (also xds.cluster_name)
//	plugin_name        the module file's name without .wasm
//	plugin_root_id     the plugin's root_id ("" by default)
//	plugin_vm_id       the plugin's vm_id ("" by default)
//	request.headers.<name>   a request header (joined with ",")
//	request.size       the request body's length (int), when buffered
//	request.time       when the gateway started the request (int, ns since the epoch)
//	response.headers.<name>  a response header, from the response phase
//	response.size      the response body's length (int), when buffered
//	destination.address the gateway's ip:port the client connected to
//	destination.port   its port (int)
//	connection.mtls    whether the client presented a certificate (bool, 1 byte)
//	connection.tls_version the TLS version ("" over plain TCP)
//
// route_metadata, xds.route_metadata, upstream.* and node.* are
// NOT_FOUND: a Weir route has no metadata map, and the upstream is
// chosen after the filters run.
//	weir.consumer      the authenticated consumer's name
//
// Properties the guest set with proxy_set_property in the same request
// are read back first.

const maxPropertyPath = 128

// maxSetProperties bounds what one request may store with
// proxy_set_property.
const maxSetProperties = 32

// property returns the value of the property at path, in host memory.
func (in *instance) property(path []byte) ([]byte, status) {
	if len(path) > maxPropertyPath {
		return nil, statusNotFound
	}
	var pbuf [maxPropertyPath]byte
	n := copy(pbuf[:], bytes.TrimRight(path, "\x00"))
	p := pbuf[:n]
	for i, c := range p {
		if c == 0 {
			p[i] = '.'
		}
	}
	if rs := in.rs; rs != nil {
		for i := range rs.props {
			if bytes.Equal(rs.props[i].k, p) {
				return rs.props[i].v, statusOK
			}
		}
	}
	switch string(p) {
	case "plugin_name":
		return in.f.pluginName, statusOK
	case "plugin_root_id":
		return in.f.s.rootID, statusOK
	case "plugin_vm_id":
		return in.f.s.vmID, statusOK
	}
	c := in.c
	if c == nil {
		return nil, statusNotFound
	}
	req := c.Request()
	out := in.buf[:0]
	switch string(p) {
	case "request.path":
		return in.pathValue(), statusOK
	case "request.url_path":
		v := in.pathValue()
		if i := bytes.IndexByte(v, '?'); i >= 0 {
			v = v[:i]
		}
		return v, statusOK
	case "request.host":
		return req.Header.Host(), statusOK
	case "request.method":
		return req.Header.Method(), statusOK
	case "request.scheme":
		return in.scheme(), statusOK
	case "request.protocol":
		return req.Header.Protocol(), statusOK
	case "request.query":
		return req.URI().QueryString(), statusOK
	case "request.id":
		return c.RequestID(), statusOK
	case "request.useragent":
		return req.Header.UserAgent(), statusOK
	case "request.referer":
		return req.Header.Referer(), statusOK
	case "source.address":
		ap, ok := in.source()
		if !ok {
			return nil, statusNotFound
		}
		out = ap.AppendTo(out)
	case "source.port":
		ap, ok := in.source()
		if !ok {
			return nil, statusNotFound
		}
		out = binary.LittleEndian.AppendUint64(out, uint64(ap.Port()))
	case "response.code":
		if in.phase < phaseResponse {
			return nil, statusNotFound
		}
		out = binary.LittleEndian.AppendUint64(out, uint64(c.Response().StatusCode()))
	case "route_name", "xds.route_name":
		out = append(out, c.Route...)
	case "cluster_name", "xds.cluster_name":
		if c.Service == "" {
			return nil, statusNotFound
		}
		out = append(out, c.Service...)
	case "request.size":
		if !c.BodyBuffered() {
			return nil, statusNotFound
		}
		out = binary.LittleEndian.AppendUint64(out, uint64(len(c.RequestBody())))
	case "request.time":
		out = binary.LittleEndian.AppendUint64(out, uint64(c.Start.UnixNano()))
	case "response.size":
		if in.phase < phaseResponse || c.Response().IsBodyStream() {
			return nil, statusNotFound
		}
		out = binary.LittleEndian.AppendUint64(out, uint64(len(c.Response().Body())))
	case "destination.address", "destination.port":
		a, ok := c.RequestCtx().LocalAddr().(*net.TCPAddr)
		if !ok {
			return nil, statusNotFound
		}
		ap := a.AddrPort()
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if p[len("destination.")] == 'a' {
			out = ap.AppendTo(out)
		} else {
			out = binary.LittleEndian.AppendUint64(out, uint64(ap.Port()))
		}
	case "connection.mtls":
		st := c.RequestCtx().TLSConnectionState()
		mtls := byte(0)
		if st != nil && len(st.PeerCertificates) > 0 {
			mtls = 1
		}
		out = append(out, mtls)
	case "connection.tls_version":
		if st := c.RequestCtx().TLSConnectionState(); st != nil {
			out = append(out, tls.VersionName(st.Version)...)
		}
	case "weir.consumer":
		cons := c.Consumer()
		if cons == nil {
			return nil, statusNotFound
		}
		out = append(out, cons.Name...)
	default:
		m, name := uint32(mapRequestHeaders), []byte(nil)
		if n, ok := bytes.CutPrefix(p, []byte("request.headers.")); ok {
			name = n
		} else if n, ok := bytes.CutPrefix(p, []byte("response.headers.")); ok && in.phase >= phaseResponse {
			m, name = mapResponseHeaders, n
		}
		if len(name) == 0 {
			return nil, statusNotFound
		}
		if v, st := in.headerValue(m, name); st == statusOK {
			return v, st
		}
		return nil, statusNotFound
	}
	in.buf = out
	return out, statusOK
}

func (in *instance) source() (netip.AddrPort, bool) {
	a, ok := in.c.RequestCtx().RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(in.c.ClientIP(), uint16(a.Port)), true
}

// setProperty stores a property for the rest of the request. Outside a
// request it is accepted and ignored.
func (in *instance) setProperty(path, value []byte) status {
	rs := in.rs
	if rs == nil {
		return statusOK
	}
	path = bytes.TrimRight(path, "\x00")
	if len(path) == 0 || len(path) > maxPropertyPath {
		return statusBadArgument
	}
	k := make([]byte, len(path))
	for i, c := range path {
		if c == 0 {
			c = '.'
		}
		k[i] = c
	}
	for i := range rs.props {
		if bytes.Equal(rs.props[i].k, k) {
			rs.props[i].v = append(rs.props[i].v[:0], value...)
			return statusOK
		}
	}
	if len(rs.props) >= maxSetProperties {
		return statusBadArgument
	}
	rs.props = append(rs.props, kv{k: k, v: append([]byte(nil), value...)})
	return statusOK
}
