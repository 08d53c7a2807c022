return {
  name = "template",
  fields = {
    { config = {
        type = "record",
        fields = {
          { request_header = { type = "string", required = true, default = "Hello-World" } },
          { response_header = { type = "string", required = true, default = "Bye-World" } },
        },
      },
    },
  },
}
