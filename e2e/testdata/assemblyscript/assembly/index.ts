// add_header adds "hello: <plugin configuration>" ("hello: world!" when
// the configuration is empty) to every response, registered under the
// root ID "add_header": the AssemblyScript SDK's hello-world filter.
export * from "../node_modules/@solo-io/proxy-runtime/assembly/proxy";
import { RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context } from "../node_modules/@solo-io/proxy-runtime/assembly/index";

class AddHeaderRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new AddHeader(context_id, this);
  }
}

class AddHeader extends Context {
  constructor(context_id: u32, root_context: AddHeaderRoot) {
    super(context_id, root_context);
  }
  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const config = this.root_context.getConfiguration();
    stream_context.headers.response.add("hello", config == "" ? "world!" : config);
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new AddHeaderRoot(context_id); }, "add_header");
