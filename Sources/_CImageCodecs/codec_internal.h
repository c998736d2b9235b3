// What the PNG and JPEG readers and writers share: the public part of each
// object and the dispatch to its codec. Not part of the public header.

#ifndef ATROUS_CODEC_INTERNAL_H
#define ATROUS_CODEC_INTERNAL_H

#include "atrous_codecs.h"

struct atr_reader {
  /// ATR_OK until the first failure, which stays.
  atr_status status;
  atr_image_info info;
  /// Bytes in one decoded row.
  size_t row_bytes;
  /// The next row `read_rows` returns.
  uint32_t next_row;
  uint8_t *exif;
  size_t exif_bytes;
  char message[ATR_MESSAGE_CAPACITY];
  atr_status (*read_rows)(atr_reader *reader, uint8_t *rows, uint32_t count);
  atr_status (*finish)(atr_reader *reader);
  void (*destroy)(atr_reader *reader);
};

struct atr_writer {
  atr_status status;
  uint32_t width, height, channels;
  size_t row_bytes;
  uint32_t next_row;
  char message[ATR_MESSAGE_CAPACITY];
  atr_status (*write_rows)(atr_writer *writer, const uint8_t *rows, uint32_t count);
  atr_status (*finish)(atr_writer *writer);
  void (*destroy)(atr_writer *writer);
};

/// Records a failure with its reason (the first reason wins) and returns it.
atr_status atr_fail(atr_status *status, char *message, atr_status failure, const char *text);

#endif
