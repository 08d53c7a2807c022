return {
  name = "set_header",
  fields = {
    { config = {
        type = "record",
        fields = {
          { value = { type = "string", default = "kong" } },
        },
      },
    },
  },
}
