#ifndef ATROUS_MODELS_H
#define ATROUS_MODELS_H

#include <stddef.h>

/// The bundled trained ONNX files, compiled into the binary (Models/ holds
/// them with their provenance and licences), so that the program finds
/// them wherever it is copied. `name` is "mnist" or "ppocr"; returns NULL
/// (and *size 0) for any other.
const unsigned char *atr_bundled_model(const char *name, size_t *size);

#endif
