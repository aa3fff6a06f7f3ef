import { Schema, type SchemaOptions } from 'mongoose';

/**
 * A schema typed by its document interface. The definition object is not inferred against
 * mongoose's generic schema types: with a dozen schemas that inference costs gigabytes of
 * compiler memory (measured: tsc needed 2.3 GB); the interfaces stay the source of truth.
 */
export function defineSchema<T>(definition: Record<string, unknown>, options: SchemaOptions): Schema<T> {
  return new Schema(definition, options) as unknown as Schema<T>;
}
