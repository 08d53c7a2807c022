-- Appends its tag in every phase, to show the order of the plugins of a
-- route (PRIORITY 2000). body_filter keeps Kong's idiom of a plugin that
-- rewrites the whole body: collect the chunks in kong.ctx.plugin until
-- eof, then set ngx.arg[1].
local Order = {
  PRIORITY = 2000,
  VERSION = "1.0.0",
}

local function append(get, set, name, tag)
  set(name, (get(name) or "") .. tag .. ",")
end

function Order:access(conf)
  append(kong.request.get_header, kong.service.request.set_header, "X-Order", conf.tag)
end

function Order:header_filter(conf)
  append(kong.response.get_header, kong.response.set_header, "X-Order-Resp", conf.tag)
  kong.response.clear_header("Content-Length")
end

function Order:body_filter(conf)
  local ctx = kong.ctx.plugin
  local chunk, eof = ngx.arg[1], ngx.arg[2]
  ctx.chunks = ctx.chunks or {}
  if chunk and chunk ~= "" then
    ctx.chunks[#ctx.chunks + 1] = chunk
  end
  if not eof then
    ngx.arg[1] = nil
    return
  end
  ngx.arg[1] = table.concat(ctx.chunks) .. "|" .. conf.tag
end

function Order:log(conf)
  kong.log.notice("order log ", conf.tag)
end

return Order
