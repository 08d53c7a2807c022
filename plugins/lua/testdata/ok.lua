-- A script read from a file: adds a header naming the configured tenant.
function access()
  weir.request.set_header("X-Tenant", conf.tenant or "none")
end
