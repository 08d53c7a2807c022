local typedefs = require "kong.db.schema.typedefs"

return {
  name = "order_lo",
  fields = {
    { protocols = typedefs.protocols_http },
    { config = {
        type = "record",
        fields = {
          { tag = { type = "string", required = true, default = "lo" } },
        },
      },
    },
  },
}
