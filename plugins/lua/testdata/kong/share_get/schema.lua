return {
  name = "share_get",
  fields = {
    { config = { type = "record", fields = {} } },
  },
}
