// The entry `pulumi package add` and the engine run: package.json "main", loaded by
// @pulumi/pulumi's run-plugin with require(<package folder>). CommonJS, because that is how
// run-plugin loads it, and it loads tsx itself: the Node host passes PulumiPlugin.yaml's
// `nodeargs` after run-plugin's path, so `--import tsx` there never reaches node. run-plugin calls
// the exported function, which serves components/provider.ts until the engine is done with it.
/* global module, __filename -- CommonJS globals */
// tsx's API is imported, not required: its CommonJS build resolves its own loader at a wrong path.
module.exports = async function serveDistributedRedisPlugin() {
  const { tsImport } = await import("tsx/esm/api");
  const { serve } = await tsImport("./provider.ts", __filename);
  return serve(process.argv.slice(2));
};
