// Minimal ambient declarations for the Bun and Deno FFI APIs used by
// src/ffi/bun.ts and src/ffi/deno.ts (there are no @types for them here).
// Only what those files use is declared. Code outside src/ffi must not use
// these: everything runtime-specific stays behind the Libc interface.

declare namespace Deno {
  type NativeType =
    | 'i8' | 'u8' | 'i16' | 'u16' | 'i32' | 'u32' | 'i64' | 'u64'
    | 'isize' | 'usize' | 'f32' | 'f64' | 'bool'
    | 'pointer' | 'buffer' | 'function' | 'void';

  interface ForeignFunction {
    /** Symbol name in the library, when it differs from the key. */
    name?: string;
    parameters: readonly NativeType[];
    result: NativeType;
    nonblocking?: boolean;
  }

  /** An opaque pointer object (null for NULL). */
  type PointerObject = { readonly __brand: 'Deno.PointerObject' };
  type PointerValue = PointerObject | null;

  interface DynamicLibrary<S extends Record<string, ForeignFunction>> {
    readonly symbols: { readonly [K in keyof S]: (...args: unknown[]) => unknown };
    close(): void;
  }

  function dlopen<const S extends Record<string, ForeignFunction>>(path: string, symbols: S): DynamicLibrary<S>;

  const UnsafePointer: {
    /** The address of a buffer's bytes. */
    of(buffer: ArrayBufferView): PointerValue;
    value(pointer: PointerValue): number | bigint;
  };

  class UnsafePointerView {
    constructor(pointer: PointerObject);
    getInt32(offset?: number): number;
  }
}

declare module 'bun:ffi' {
  /** FFI type tags (numbers at run time). */
  export const FFIType: {
    readonly i16: number;
    readonly i32: number;
    readonly u32: number;
    readonly i64: number;
    readonly u64: number;
    /** i64 result returned as a number when it fits in 53 bits. */
    readonly i64_fast: number;
    readonly ptr: number;
    readonly void: number;
  };

  /** A raw address, as bun:ffi represents pointers. */
  export type Pointer = number;

  export interface FFIFunction {
    readonly args?: readonly number[];
    readonly returns?: number;
  }

  export interface Library<S extends Record<string, FFIFunction>> {
    readonly symbols: { readonly [K in keyof S]: (...args: unknown[]) => unknown };
    close(): void;
  }

  export function dlopen<S extends Record<string, FFIFunction>>(path: string, symbols: S): Library<S>;

  /** Address of a TypedArray's bytes (valid while the array is alive and not resized). */
  export function ptr(view: ArrayBufferView | ArrayBufferLike, byteOffset?: number): Pointer;

  export const read: {
    i32(address: Pointer, byteOffset?: number): number;
  };
}
