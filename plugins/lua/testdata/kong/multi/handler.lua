local util = require "kong.plugins.multi.lib.util"
local schema = require "kong.plugins.multi.schema"

local Multi = { PRIORITY = 10, VERSION = "0.2.0" }

local ready = false

function Multi:init_worker()
  ready = (schema.name == "multi")
end

function Multi:access(conf)
  kong.service.request.set_header("X-Signature", util.signature(conf.secret, ngx.var.uri))
  kong.service.request.set_header("X-Ready", tostring(ready))
  kong.service.request.set_header("X-Method-Var", ngx.var.request_method)
end

return Multi
