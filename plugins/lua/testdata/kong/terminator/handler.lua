local kong = kong
local encode = require("cjson.safe").new().encode

local MESSAGES = {
  [403] = "Forbidden",
  [503] = "Service unavailable",
}

local Terminator = {
  PRIORITY = 2,
  VERSION = "1.0.0",
}

function Terminator:access(conf)
  if conf.echo then
    local headers = kong.request.get_headers()
    local query = kong.request.get_query()
    if conf.trigger and not headers[conf.trigger:lower()] and not query[conf.trigger] then
      return -- not triggered: the request goes on
    end
    local echoed = encode({
      message = conf.message or MESSAGES[conf.status_code],
      request = {
        method = kong.request.get_method(),
        path = kong.request.get_path(),
        host = kong.request.get_host(),
        scheme = kong.request.get_scheme(),
        query = query,
        headers = { ["x-echo"] = headers["x-echo"] },
        body = kong.request.get_raw_body(),
      },
      route = kong.router.get_route().name,
    })
    return kong.response.exit(conf.status_code, echoed, { ["Content-Type"] = "application/json" })
  end
  if conf.body then
    return kong.response.exit(conf.status_code, conf.body, { ["Content-Type"] = conf.content_type })
  end
  local message = conf.message or MESSAGES[conf.status_code]
  return kong.response.exit(conf.status_code, message and { message = message } or nil)
end

return Terminator
