-- Reads what share_set (a higher-priority plugin of the same request)
-- wrote into kong.ctx.shared and ngx.ctx, in access, header_filter and
-- log; kong.ctx.plugin is its own (share_set's note is not there).
local ShareGet = {PRIORITY = 800, VERSION = "1.0.0"}

local function seen()
  local s = kong.ctx.shared
  return tostring(s.tenant) .. "/" .. tostring(s.seen and s.seen.by) .. "/" .. tostring(ngx.ctx.note) ..
    "/" .. tostring(kong.ctx.plugin.mine)
end

function ShareGet:access(conf)
  kong.service.request.set_header("X-Shared-Access", seen())
  kong.ctx.shared.count = 1
end

function ShareGet:header_filter(conf)
  kong.response.set_header("X-Shared-Header", seen() .. "/" .. tostring(kong.ctx.shared.count))
end

function ShareGet:log(conf)
  kong.log.notice("share_get log: ", seen())
end

return ShareGet
