return {
  name = "multi",
  fields = {
    { config = {
        type = "record",
        fields = {
          { secret = { type = "string", required = true } },
        },
      },
    },
  },
}
