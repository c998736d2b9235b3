// JPEG readers and writers over libjpeg(-turbo). libjpeg's default
// error_exit calls exit(); ours formats the message and longjmps back to
// the entry point that called into the library, so the process never ends
// inside it.

#include "codec_internal.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct {
  struct jpeg_error_mgr base;
  jmp_buf jump;
  /// The object's failure code and message (in the heap, so they survive
  /// the longjmp).
  atr_status *failure;
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

static void install_error_handler(jpeg_error_context *context, atr_status *failure, char *message) {
  jpeg_std_error(&context->base);
  context->base.error_exit = on_jpeg_error;
  context->base.emit_message = on_jpeg_message;
  context->failure = failure;
  context->message = message;
}

typedef struct {
  atr_reader base;  // first: the public part
  struct jpeg_decompress_struct cinfo;
  jpeg_error_context error;
  atr_status failure;
  int created, started, cmyk;
  /// One CMYK row, converted to RGB as it is read.
  uint8_t *scratch;
} jpeg_reader;

typedef struct {
  atr_writer base;
  struct jpeg_compress_struct cinfo;
  jpeg_error_context error;
  atr_status failure;
  int created;
} jpeg_writer;

#define JPEG_CATCH(object, fallback)                                                           \
  if (setjmp((object)->error.jump)) {                                                          \
    return atr_fail(&(object)->base.status, (object)->base.message, (object)->failure, fallback); \
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

static void copy_exif(jpeg_reader *r) {
  static const uint8_t tag[6] = {'E', 'x', 'i', 'f', 0, 0};
  for (jpeg_saved_marker_ptr marker = r->cinfo.marker_list; marker; marker = marker->next) {
    if (marker->marker != JPEG_APP0 + 1 || marker->data_length <= 6) continue;
    if (memcmp(marker->data, tag, 6) != 0) continue;
    size_t length = marker->data_length - 6;
    r->base.exif = (uint8_t *)malloc(length);
    if (r->base.exif == NULL) return;
    memcpy(r->base.exif, marker->data + 6, length);
    r->base.exif_bytes = length;
    return;
  }
}

static atr_status read_jpeg_rows(atr_reader *base, uint8_t *rows, uint32_t count) {
  jpeg_reader *r = (jpeg_reader *)base;
  JPEG_CATCH(r, "invalid JPEG data");
  if (!r->started) {
    // Not at open: a progressive file's coefficient buffer is allocated
    // here, and callers that only want the header never need it.
    jpeg_start_decompress(&r->cinfo);
    r->started = 1;
    if (r->cinfo.output_width != base->info.width || r->cinfo.output_height != base->info.height) {
      r->failure = ATR_ERR_FORMAT;
      snprintf(base->message, ATR_MESSAGE_CAPACITY, "decoded size differs from the header's");
      longjmp(r->error.jump, 1);
    }
  }
  size_t row_bytes = base->row_bytes;
  for (uint32_t done = 0; done < count;) {
    JDIMENSION got;
    if (r->cmyk) {
      JSAMPROW row = r->scratch;
      got = jpeg_read_scanlines(&r->cinfo, &row, 1);
      if (got == 1) cmyk_row_to_rgb(r->scratch, rows + (size_t)done * row_bytes, base->info.width);
    } else {
      // Several rows a call let libjpeg-turbo upsample in larger batches.
      JSAMPROW pointers[16];
      uint32_t batch = count - done < 16 ? count - done : 16;
      for (uint32_t i = 0; i < batch; i++) pointers[i] = rows + (size_t)(done + i) * row_bytes;
      got = jpeg_read_scanlines(&r->cinfo, pointers, batch);
    }
    if (got == 0) {
      r->failure = ATR_ERR_TRUNCATED;
      snprintf(base->message, ATR_MESSAGE_CAPACITY, "unexpected end of file");
      longjmp(r->error.jump, 1);
    }
    done += got;
  }
  return ATR_OK;
}

static atr_status finish_jpeg_read(atr_reader *base) {
  jpeg_reader *r = (jpeg_reader *)base;
  JPEG_CATCH(r, "invalid JPEG data");
  jpeg_finish_decompress(&r->cinfo);
  return ATR_OK;
}

static void jpeg_reader_destroy(atr_reader *base) {
  jpeg_reader *r = (jpeg_reader *)base;
  if (r->created) jpeg_destroy_decompress(&r->cinfo);
  free(r->scratch);
}

atr_reader *atr_jpeg_reader_open(FILE *file, uint64_t max_pixels) {
  jpeg_reader *r = (jpeg_reader *)calloc(1, sizeof(jpeg_reader));
  if (r == NULL) return NULL;
  r->base.read_rows = read_jpeg_rows;
  r->base.finish = finish_jpeg_read;
  r->base.destroy = jpeg_reader_destroy;
  r->failure = ATR_ERR_FORMAT;

  uint8_t soi[2];
  if (fread(soi, 1, 2, file) != 2 || soi[0] != 0xFF || soi[1] != 0xD8 || fseeko(file, 0, SEEK_SET) != 0) {
    atr_fail(&r->base.status, r->base.message, ATR_ERR_FORMAT, "not a JPEG file (no SOI marker)");
    return &r->base;
  }
  install_error_handler(&r->error, &r->failure, r->base.message);
  r->cinfo.err = &r->error.base;
  if (setjmp(r->error.jump)) {
    atr_fail(&r->base.status, r->base.message, r->failure, "invalid JPEG data");
    return &r->base;
  }
  jpeg_create_decompress(&r->cinfo);
  r->created = 1;
  jpeg_stdio_src(&r->cinfo, file);
  jpeg_save_markers(&r->cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&r->cinfo, TRUE);

  atr_image_info *info = &r->base.info;
  info->width = r->cinfo.image_width;
  info->height = r->cinfo.image_height;
  info->source_bit_depth = (uint32_t)r->cinfo.data_precision;
  info->source_color_type = (int32_t)r->cinfo.jpeg_color_space;
  info->source_components = (uint32_t)r->cinfo.num_components;
  info->interlaced = r->cinfo.progressive_mode ? 1 : 0;
  info->arithmetic = r->cinfo.arith_code ? 1 : 0;
  info->bit_depth = 8;
  if ((uint64_t)info->width * (uint64_t)info->height > max_pixels) {
    char text[ATR_MESSAGE_CAPACITY];
    snprintf(text, sizeof text, "declared size %ux%u (%llu pixels) exceeds the pixel limit of %llu",
             (unsigned)info->width, (unsigned)info->height,
             (unsigned long long)info->width * (unsigned long long)info->height, (unsigned long long)max_pixels);
    atr_fail(&r->base.status, r->base.message, ATR_ERR_TOO_LARGE, text);
    return &r->base;
  }
  switch (r->cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
      r->cinfo.out_color_space = JCS_GRAYSCALE;
      info->channels = 1;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      r->cinfo.out_color_space = JCS_CMYK;
      info->channels = 3;
      r->cmyk = 1;
      r->scratch = (uint8_t *)malloc((size_t)info->width * 4);
      if (r->scratch == NULL) {
        atr_fail(&r->base.status, r->base.message, ATR_ERR_MEMORY, "out of memory");
        return &r->base;
      }
      break;
    default:
      r->cinfo.out_color_space = JCS_RGB;
      info->channels = 3;
      break;
  }
  r->base.row_bytes = (size_t)info->width * info->channels;
  copy_exif(r);
  return &r->base;
}

static atr_status write_jpeg_rows(atr_writer *base, const uint8_t *rows, uint32_t count) {
  jpeg_writer *w = (jpeg_writer *)base;
  JPEG_CATCH(w, "JPEG encoding failed");
  for (uint32_t done = 0; done < count;) {
    JSAMPROW pointers[16];
    uint32_t batch = count - done < 16 ? count - done : 16;
    for (uint32_t i = 0; i < batch; i++) pointers[i] = (JSAMPROW)(rows + (size_t)(done + i) * base->row_bytes);
    done += jpeg_write_scanlines(&w->cinfo, pointers, batch);
  }
  return ATR_OK;
}

static atr_status finish_jpeg_write(atr_writer *base) {
  jpeg_writer *w = (jpeg_writer *)base;
  JPEG_CATCH(w, "JPEG encoding failed");
  jpeg_finish_compress(&w->cinfo);
  return ATR_OK;
}

static void jpeg_writer_destroy(atr_writer *base) {
  jpeg_writer *w = (jpeg_writer *)base;
  if (w->created) jpeg_destroy_compress(&w->cinfo);
}

atr_writer *atr_jpeg_writer_open(FILE *file, uint32_t width, uint32_t height, uint32_t channels, int quality) {
  jpeg_writer *w = (jpeg_writer *)calloc(1, sizeof(jpeg_writer));
  if (w == NULL) return NULL;
  w->base.write_rows = write_jpeg_rows;
  w->base.finish = finish_jpeg_write;
  w->base.destroy = jpeg_writer_destroy;
  w->base.width = width;
  w->base.height = height;
  w->base.channels = channels;
  w->failure = ATR_ERR_FORMAT;
  if (width == 0 || height == 0 || (channels != 1 && channels != 3) || quality < 1 || quality > 100 ||
      width > JPEG_MAX_DIMENSION || height > JPEG_MAX_DIMENSION) {
    char text[ATR_MESSAGE_CAPACITY];
    snprintf(text, sizeof text, "JPEG takes 8-bit gray or RGB up to %d pixels a side and quality 1-100",
             (int)JPEG_MAX_DIMENSION);
    atr_fail(&w->base.status, w->base.message, ATR_ERR_ARGUMENT, text);
    return &w->base;
  }
  w->base.row_bytes = (size_t)width * channels;
  install_error_handler(&w->error, &w->failure, w->base.message);
  w->cinfo.err = &w->error.base;
  if (setjmp(w->error.jump)) {
    atr_fail(&w->base.status, w->base.message, w->failure, "JPEG encoding failed");
    return &w->base;
  }
  jpeg_create_compress(&w->cinfo);
  w->created = 1;
  // libjpeg's stdio destination fails through error_exit on a short write.
  jpeg_stdio_dest(&w->cinfo, file);
  w->cinfo.image_width = width;
  w->cinfo.image_height = height;
  w->cinfo.input_components = (int)channels;
  w->cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&w->cinfo);
  jpeg_set_quality(&w->cinfo, quality, TRUE);
  jpeg_start_compress(&w->cinfo, TRUE);
  return &w->base;
}
