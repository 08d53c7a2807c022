local cjson = require "cjson"

local JsonTag = { PRIORITY = 800, VERSION = "0.1.0" }

function JsonTag:access(conf)
  local m, err = ngx.re.match(kong.request.get_path(), conf.id_pattern, "jo")
  if err then
    return kong.response.error(500, err)
  end
  if not m then
    return kong.response.exit(404, { message = "no item id in the path" })
  end
  kong.ctx.shared.item_id = m.id
  kong.service.request.set_header("X-Item-Id", m[1])
end

function JsonTag:header_filter(conf)
  if kong.response.get_source() ~= "service" then
    return -- our own kong.response.exit answer
  end
  kong.response.clear_header("Content-Length")
  kong.response.set_header("Content-Type", "application/json")
end

function JsonTag:body_filter(conf)
  if kong.response.get_source() ~= "service" then
    return
  end
  local body = kong.response.get_raw_body()
  local doc = cjson.decode(body)
  doc[conf.field] = tonumber(kong.ctx.shared.item_id)
  if conf.redact then
    doc.note = ngx.re.gsub(doc.note or "", conf.redact, "[$1]", "i")
  end
  kong.log.inspect(doc)
  kong.response.set_raw_body(cjson.encode(doc))
end

return JsonTag
