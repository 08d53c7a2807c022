-- A Kong plugin whose access sets one upstream header, for the
-- weir+lua_kong_header scenario (62-lua-kong-header.yaml) and
-- plugins/lua's BenchmarkKongSetHeader.
local SetHeader = {PRIORITY = 1, VERSION = "1.0.0"}

function SetHeader:access(conf)
  kong.service.request.set_header("X-From", conf.value)
end

return SetHeader
