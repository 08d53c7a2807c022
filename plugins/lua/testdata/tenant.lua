-- tenant.lua: requests must name an allowed tenant; the upstream gets it
-- as a header, the client sees which tenant served it.
local allowed = {}
for _, t in ipairs(conf.allowed) do allowed[t] = true end

function access()
  local tenant = weir.request.get_header(conf.header)
    or weir.request.get_query_arg("tenant")
  if not tenant or not allowed[tenant] then
    return weir.response.exit(403, {error = "unknown tenant"})
  end
  weir.request.clear_query_arg("tenant")
  weir.request.set_header(conf.header, tenant)
  weir.ctx.shared.tenant = tenant
end

function header_filter()
  weir.response.set_header("X-Served-Tenant", weir.ctx.shared.tenant)
end

function log()
  if weir.response.get_status() >= 500 then
    weir.log.warn("tenant ", weir.ctx.shared.tenant, " got ", weir.response.get_status())
  end
end
