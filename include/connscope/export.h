/**
 * @file export.h
 * @brief CONNSCOPE_API marks the symbols the shared library exports.
 */
#ifndef CONNSCOPE_EXPORT_H
#define CONNSCOPE_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
/** Exported from libconnscope.so; everything else is hidden. */
#define CONNSCOPE_API __attribute__((visibility("default")))
#else
#define CONNSCOPE_API
#endif

#endif
