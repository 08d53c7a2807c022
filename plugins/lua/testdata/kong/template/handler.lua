-- In the style of the Kong/kong-plugin template (Kong < 3 base_plugin).
local ngx = ngx
local cjson = require "cjson.safe"

local plugin_name = ({...})[1]:match("^kong%.plugins%.([^%.]+)")

local plugin = require("kong.plugins.base_plugin"):extend()

function plugin:new()
  plugin.super.new(self, plugin_name)
end

function plugin:access(plugin_conf)
  plugin.super.access(self)
  ngx.req.set_header(plugin_conf.request_header, "this is on a request")
end

function plugin:header_filter(plugin_conf)
  plugin.super.header_filter(self)
  ngx.header[plugin_conf.response_header] = "this is on the response from " .. self._name
end

function plugin:body_filter(plugin_conf)
  local ctx = ngx.ctx
  local chunk, eof = ngx.arg[1], ngx.arg[2]
  ctx.chunks = ctx.chunks or {}
  ctx.chunks[#ctx.chunks + 1] = chunk
  if eof then
    ngx.arg[1] = cjson.encode({ upstream = table.concat(ctx.chunks), answer = 42 })
  else
    ngx.arg[1] = nil
  end
end

plugin.PRIORITY = 1000

return plugin
