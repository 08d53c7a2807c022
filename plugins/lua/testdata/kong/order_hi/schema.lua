return {
  name = "order_hi",
  fields = {
    { config = {
        type = "record",
        fields = {
          { tag = { type = "string", default = "hi" } },
        },
      },
    },
  },
}
