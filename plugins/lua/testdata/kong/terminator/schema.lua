local typedefs = require "kong.db.schema.typedefs"

local function present(v)
  return type(v) == "string" and #v > 0
end

return {
  name = "terminator",
  fields = {
    { protocols = typedefs.protocols_http },
    { config = {
        type = "record",
        fields = {
          { status_code = { type = "integer", default = 503, between = { 100, 599 } } },
          { message = { type = "string" } },
          { content_type = { type = "string" } },
          { body = { type = "string" } },
          { echo = { type = "boolean", required = true, default = false } },
          { trigger = typedefs.header_name },
        },
        custom_validator = function(config)
          if present(config.message) and (present(config.content_type) or present(config.body)) then
            return nil, "message cannot be used with content_type or body"
          end
          if present(config.content_type) and not present(config.body) then
            return nil, "content_type requires a body"
          end
          if config.trigger ~= ngx.null and not config.echo then
            return nil, "trigger can only be used with echo"
          end
          return true
        end,
      },
    },
  },
}
