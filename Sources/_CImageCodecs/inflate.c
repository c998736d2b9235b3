// Raw deflate for the entries of .npz (ZIP) archives.

#include "atrous_codecs.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

atr_status atr_inflate_raw(const uint8_t *data, size_t size, uint8_t *out, size_t out_size,
                           char message[ATR_MESSAGE_CAPACITY]) {
  z_stream stream;
  memset(&stream, 0, sizeof(stream));
  if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) {
    snprintf(message, ATR_MESSAGE_CAPACITY, "cannot start inflating");
    return ATR_ERR_MEMORY;
  }
  atr_status status = ATR_OK;
  size_t consumed = 0, produced = 0;
  int result = Z_OK;
  // zlib counts in uInt; feed and drain in pieces that fit.
  while (result == Z_OK) {
    if (stream.avail_in == 0 && consumed < size) {
      size_t piece = size - consumed > (1u << 30) ? (1u << 30) : size - consumed;
      stream.next_in = (Bytef *)(data + consumed);
      stream.avail_in = (uInt)piece;
      consumed += piece;
    }
    if (stream.avail_out == 0 && produced < out_size) {
      size_t piece = out_size - produced > (1u << 30) ? (1u << 30) : out_size - produced;
      stream.next_out = out + produced;
      stream.avail_out = (uInt)piece;
      produced += piece;
    }
    if (stream.avail_in == 0 && stream.avail_out == 0) break;
    result = inflate(&stream, Z_NO_FLUSH);
  }
  if (result != Z_STREAM_END || stream.total_out != out_size) {
    snprintf(message, ATR_MESSAGE_CAPACITY, "%s", result == Z_DATA_ERROR && stream.msg ? stream.msg
             : stream.total_out != out_size ? "deflated size does not match" : "truncated deflate data");
    status = ATR_ERR_FORMAT;
  }
  inflateEnd(&stream);
  return status;
}
