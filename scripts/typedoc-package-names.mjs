// TypeDoc plugin: names each entry point's module after the import a user writes
// ('core/src/cluster' → '@quiesce/core/cluster'), since the sources carry no @module names.
import { Converter, ReflectionKind } from 'typedoc'

export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    for (const mod of context.project.getReflectionsByKind(ReflectionKind.Module)) {
      const m = /^(\w+)\/src(?:\/(\w+))?$/.exec(mod.name)
      if (m) mod.name = `@quiesce/${m[1]}${m[2] ? `/${m[2]}` : ''}`
    }
  })
}
