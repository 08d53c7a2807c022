return {
  name = "share_set",
  fields = {
    { config = {
        type = "record",
        fields = {
          { header = { type = "string", default = "X-Tenant" } },
        },
      },
    },
  },
}
