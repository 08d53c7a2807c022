-- Writes the request's tenant (from a request header) into kong.ctx.shared
-- and ngx.ctx in access, for share_get, a lower-priority plugin of the
-- same request, to read: Kong's way for the plugins of one request to
-- talk. Its own note in kong.ctx.plugin stays its own.
local ShareSet = {PRIORITY = 900, VERSION = "1.0.0"}

function ShareSet:access(conf)
  local tenant = kong.request.get_header(conf.header)
  if tenant then
    kong.ctx.shared.tenant = tenant
    kong.ctx.shared.seen = {by = "share_set", n = 1}
    ngx.ctx.note = "ngx:" .. tenant
  end
  kong.ctx.plugin.mine = "share_set's own"
end

function ShareSet:header_filter(conf)
  -- still this plugin's own in a later phase
  kong.response.set_header("X-Set-Plugin", tostring(kong.ctx.plugin.mine))
end

return ShareSet
