// JPEG decode and encode over libjpeg(-turbo). libjpeg's default error_exit
// calls exit(); ours formats the message and longjmps back to the entry
// point, so the process never ends inside the library.

#include "atrous_codecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct {
  struct jpeg_error_mgr base;
  jmp_buf jump;
  /// Points at a volatile local of the entry point (survives the longjmp).
  volatile atr_status *failure;
  char *message;
} jpeg_error_context;

static void on_jpeg_error(j_common_ptr cinfo) {
  jpeg_error_context *context = (jpeg_error_context *)cinfo->err;
  char text[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, text);
  if (context->message[0] == '\0') snprintf(context->message, ATR_MESSAGE_CAPACITY, "%s", text);
  if (cinfo->err->msg_code == JERR_BAD_PRECISION) *context->failure = ATR_ERR_UNSUPPORTED;
  if (cinfo->err->msg_code == JERR_OUT_OF_MEMORY) *context->failure = ATR_ERR_MEMORY;
  longjmp(context->jump, 1);
}

// Level -1 is a warning. Running out of data is one for libjpeg (it pads
// with gray); we make it fatal, as PIL does, so a cut file never passes as
// whole. Other corrupt-data warnings are tolerated as OpenCV and PIL do.
static void on_jpeg_message(j_common_ptr cinfo, int level) {
  if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    jpeg_error_context *context = (jpeg_error_context *)cinfo->err;
    *context->failure = ATR_ERR_TRUNCATED;
    snprintf(context->message, ATR_MESSAGE_CAPACITY, "unexpected end of file");
    longjmp(context->jump, 1);
  }
  if (level == -1) cinfo->err->num_warnings++;
}

static void install_error_handler(jpeg_error_context *context, volatile atr_status *failure,
                                  char *message) {
  jpeg_std_error(&context->base);
  context->base.error_exit = on_jpeg_error;
  context->base.emit_message = on_jpeg_message;
  context->failure = failure;
  context->message = message;
}

// Adobe writes CMYK inverted (as most CMYK JPEGs are); this is OpenCV's
// conversion, so the result matches cv2.imread.
static void cmyk_row_to_rgb(const uint8_t *cmyk, uint8_t *rgb, uint32_t width) {
  for (uint32_t x = 0; x < width; x++) {
    int c = cmyk[0], m = cmyk[1], y = cmyk[2], k = cmyk[3];
    rgb[0] = (uint8_t)(k - ((255 - c) * k >> 8));
    rgb[1] = (uint8_t)(k - ((255 - m) * k >> 8));
    rgb[2] = (uint8_t)(k - ((255 - y) * k >> 8));
    cmyk += 4;
    rgb += 3;
  }
}

static uint8_t *copy_exif(j_decompress_ptr cinfo, size_t *size) {
  static const uint8_t tag[6] = {'E', 'x', 'i', 'f', 0, 0};
  for (jpeg_saved_marker_ptr marker = cinfo->marker_list; marker; marker = marker->next) {
    if (marker->marker != JPEG_APP0 + 1 || marker->data_length <= 6) continue;
    if (memcmp(marker->data, tag, 6) != 0) continue;
    size_t length = marker->data_length - 6;
    uint8_t *copy = (uint8_t *)malloc(length);
    if (copy == NULL) return NULL;
    memcpy(copy, marker->data + 6, length);
    *size = length;
    return copy;
  }
  return NULL;
}

atr_status atr_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                           int header_only, atr_decode_result *result) {
  memset(result, 0, sizeof(*result));
  struct jpeg_decompress_struct cinfo;
  jpeg_error_context error;
  // Written after setjmp and read after a longjmp: must be volatile.
  volatile atr_status failure = ATR_ERR_FORMAT;
  uint8_t *volatile pixels = NULL;
  uint8_t *volatile scratch = NULL;
  uint8_t *volatile exif = NULL;

  if (size < 3 || data[0] != 0xFF || data[1] != 0xD8) {
    snprintf(result->message, ATR_MESSAGE_CAPACITY, "not a JPEG file (no SOI marker)");
    return ATR_ERR_FORMAT;
  }

  install_error_handler(&error, &failure, result->message);
  cinfo.err = &error.base;
  if (setjmp(error.jump)) {
    jpeg_destroy_decompress(&cinfo);
    free(pixels);
    free(scratch);
    free(exif);
    result->pixels = NULL;
    result->exif = NULL;
    if (result->message[0] == '\0') snprintf(result->message, ATR_MESSAGE_CAPACITY, "invalid JPEG data");
    return failure;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, (unsigned long)size);
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&cinfo, TRUE);

  result->info.width = cinfo.image_width;
  result->info.height = cinfo.image_height;
  result->info.source_bit_depth = (uint32_t)cinfo.data_precision;
  result->info.source_color_type = (int32_t)cinfo.jpeg_color_space;
  result->info.source_components = (uint32_t)cinfo.num_components;
  result->info.interlaced = cinfo.progressive_mode ? 1 : 0;
  result->info.arithmetic = cinfo.arith_code ? 1 : 0;
  result->info.bit_depth = 8;

  if ((uint64_t)cinfo.image_width * (uint64_t)cinfo.image_height > max_pixels) {
    snprintf(result->message, ATR_MESSAGE_CAPACITY,
             "declared size %ux%u (%llu pixels) exceeds the pixel limit of %llu",
             (unsigned)cinfo.image_width, (unsigned)cinfo.image_height,
             (unsigned long long)cinfo.image_width * (unsigned long long)cinfo.image_height,
             (unsigned long long)max_pixels);
    failure = ATR_ERR_TOO_LARGE;
    longjmp(error.jump, 1);
  }

  int cmyk = 0;
  switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
      cinfo.out_color_space = JCS_GRAYSCALE;
      result->info.channels = 1;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      cinfo.out_color_space = JCS_CMYK;
      result->info.channels = 3;
      cmyk = 1;
      break;
    default:
      cinfo.out_color_space = JCS_RGB;
      result->info.channels = 3;
      break;
  }
  if (header_only) {
    size_t exif_size = 0;
    exif = copy_exif(&cinfo, &exif_size);
    result->exif = exif;
    result->exif_bytes = exif_size;
    jpeg_destroy_decompress(&cinfo);
    return ATR_OK;
  }

  jpeg_start_decompress(&cinfo);
  uint32_t width = cinfo.output_width, height = cinfo.output_height;
  uint32_t channels = result->info.channels;
  size_t row_bytes = (size_t)width * channels;
  size_t total = row_bytes * height;
  void *allocation = NULL;
  if (posix_memalign(&allocation, 64, total ? total : 64) != 0) {
    failure = ATR_ERR_MEMORY;
    snprintf(result->message, ATR_MESSAGE_CAPACITY, "out of memory for pixels");
    longjmp(error.jump, 1);
  }
  pixels = (uint8_t *)allocation;
  if (cmyk) {
    scratch = (uint8_t *)malloc((size_t)width * 4);
    if (scratch == NULL) {
      failure = ATR_ERR_MEMORY;
      snprintf(result->message, ATR_MESSAGE_CAPACITY, "out of memory");
      longjmp(error.jump, 1);
    }
  }
  while (cinfo.output_scanline < height) {
    uint32_t y = cinfo.output_scanline;
    if (cmyk) {
      JSAMPROW row = scratch;
      if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) break;
      cmyk_row_to_rgb(scratch, pixels + (size_t)y * row_bytes, width);
    } else {
      // Up to four rows a call lets libjpeg-turbo upsample in larger batches.
      JSAMPROW rows[4];
      uint32_t count = height - y < 4 ? height - y : 4;
      for (uint32_t i = 0; i < count; i++) rows[i] = pixels + (size_t)(y + i) * row_bytes;
      if (jpeg_read_scanlines(&cinfo, rows, count) == 0) break;
    }
  }
  if (cinfo.output_scanline < height) {
    failure = ATR_ERR_TRUNCATED;
    snprintf(result->message, ATR_MESSAGE_CAPACITY, "unexpected end of file");
    longjmp(error.jump, 1);
  }
  size_t exif_size = 0;
  exif = copy_exif(&cinfo, &exif_size);
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  free(scratch);
  result->info.width = width;
  result->info.height = height;
  result->pixels = pixels;
  result->pixel_bytes = total;
  result->exif = exif;
  result->exif_bytes = exif_size;
  return ATR_OK;
}

atr_status atr_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height,
                           uint32_t channels, int quality, atr_encode_result *result) {
  memset(result, 0, sizeof(*result));
  if (width == 0 || height == 0 || (channels != 1 && channels != 3) || quality < 1 ||
      quality > 100 || width > JPEG_MAX_DIMENSION || height > JPEG_MAX_DIMENSION) {
    snprintf(result->message, ATR_MESSAGE_CAPACITY,
             "JPEG takes 8-bit gray or RGB up to %d pixels a side and quality 1-100",
             (int)JPEG_MAX_DIMENSION);
    return ATR_ERR_ARGUMENT;
  }
  struct jpeg_compress_struct cinfo;
  jpeg_error_context error;
  volatile atr_status failure = ATR_ERR_FORMAT;
  // libjpeg grows this buffer and stores the current one through the
  // pointer we hand it; since its address escapes, it lives in memory and
  // stays valid after a longjmp. We free it on failure, as libjpeg asks.
  unsigned char *output = NULL;
  unsigned long output_size = 0;

  install_error_handler(&error, &failure, result->message);
  cinfo.err = &error.base;
  if (setjmp(error.jump)) {
    jpeg_destroy_compress(&cinfo);
    free(output);
    if (result->message[0] == '\0') snprintf(result->message, ATR_MESSAGE_CAPACITY, "JPEG encoding failed");
    return failure;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, &output, &output_size);
  cinfo.image_width = width;
  cinfo.image_height = height;
  cinfo.input_components = (int)channels;
  cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  size_t row_bytes = (size_t)width * channels;
  while (cinfo.next_scanline < height) {
    JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * row_bytes);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  result->data = output;
  result->size = output_size;
  return ATR_OK;
}
