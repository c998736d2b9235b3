#include "atrous_models.h"

#include <string.h>

// #embed is C23; clang takes it in every C mode.
#pragma clang diagnostic ignored "-Wc23-extensions"

static const unsigned char mnist[] = {
#embed "Models/mnist-8/model.onnx"
};

static const unsigned char ppocr[] = {
#embed "Models/ppocrv4-det/model.onnx"
};

const unsigned char *atr_bundled_model(const char *name, size_t *size) {
  if (strcmp(name, "mnist") == 0) {
    *size = sizeof mnist;
    return mnist;
  }
  if (strcmp(name, "ppocr") == 0) {
    *size = sizeof ppocr;
    return ppocr;
  }
  *size = 0;
  return NULL;
}
