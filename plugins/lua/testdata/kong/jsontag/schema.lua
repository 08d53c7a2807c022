return {
  name = "jsontag",
  fields = {
    { config = {
        type = "record",
        fields = {
          { field = { type = "string", required = true } },
          { id_pattern = { type = "string", default = [[^/items/(?<id>\d+)]] } },
          { redact = { type = "string" } },
        },
      },
    },
  },
}
