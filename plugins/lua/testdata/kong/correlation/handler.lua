local kong = kong
local uuid = require("kong.tools.utils").uuid

local counter = 0 -- per VM, like Kong's per worker
local worker_uuid

local generators = {
  ["uuid"] = function()
    return uuid()
  end,
  ["uuid#counter"] = function()
    counter = counter + 1
    return worker_uuid .. "#" .. counter
  end,
  ["tracker"] = function()
    return string.format("%s-%s-%d", kong.client.get_ip() or "-", ngx.var.server_port or "-", math.floor(ngx.now() * 1000))
  end,
}

local Correlation = {
  PRIORITY = 100001,
  VERSION = "1.0.0",
}

function Correlation:init_worker()
  worker_uuid = kong.node.get_id()
end

function Correlation:access(conf)
  local id = kong.request.get_header(conf.header_name)
  if not id or id == "" then
    id = generators[conf.generator]()
    kong.service.request.set_header(conf.header_name, id)
  end
  kong.ctx.plugin.correlation_id = id
  if conf.echo_downstream then
    kong.response.set_header(conf.header_name, id)
  end
end

function Correlation:header_filter(conf)
  if not conf.echo_downstream then
    return
  end
  local id = kong.ctx.plugin.correlation_id
  if id then
    kong.response.set_header(conf.header_name, id)
  end
end

return Correlation
