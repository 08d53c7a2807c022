-- order_hi's twin at PRIORITY 1000, written in the older style: a
-- kong.plugins.base_plugin class and the ngx API (ngx.req, ngx.header,
-- ngx.ctx, ngx.arg). It appends its tag in every phase, so that the
-- order of the plugins of a route shows.
local BasePlugin = require "kong.plugins.base_plugin"

local OrderLo = BasePlugin:extend()
OrderLo.PRIORITY = 1000
OrderLo.VERSION = "0.1.0"

function OrderLo:new()
  OrderLo.super.new(self, "order_lo")
end

function OrderLo:access(conf)
  OrderLo.super.access(self)
  local seen = ngx.req.get_headers()["x-order"] or ""
  ngx.req.set_header("X-Order", seen .. conf.tag .. ",")
end

function OrderLo:header_filter(conf)
  OrderLo.super.header_filter(self)
  ngx.header["X-Order-Resp"] = (ngx.header["X-Order-Resp"] or "") .. conf.tag .. ","
  ngx.header.content_length = nil
end

function OrderLo:body_filter(conf)
  OrderLo.super.body_filter(self)
  local buffered = ngx.ctx.buffered or ""
  buffered = buffered .. (ngx.arg[1] or "")
  if ngx.arg[2] then
    ngx.arg[1] = buffered .. "|" .. conf.tag
  else
    ngx.ctx.buffered = buffered
    ngx.arg[1] = nil
  end
end

function OrderLo:log(conf)
  OrderLo.super.log(self)
  ngx.log(ngx.NOTICE, "order log ", conf.tag)
end

return OrderLo
