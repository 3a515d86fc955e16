/* EnCo's loss slots (the family's own numbering; the rest of enco-cl reads
 * their names through enco_trainer_loss_name). */
#ifndef ENCO_MODELS_ENCO_H
#define ENCO_MODELS_ENCO_H

#include "nn/heads.h"

enum {
    ENCO_LOSS_D_FAKE = 0,
    ENCO_LOSS_D_REAL,
    ENCO_LOSS_D,
    ENCO_LOSS_GAN_RAW,
    ENCO_LOSS_G_GAN,
    ENCO_LOSS_ENCO,
    ENCO_LOSS_IDT_RAW,
    ENCO_LOSS_IDT,
    ENCO_LOSS_G,
    ENCO_LOSS_ENCO_PAIR0, /* + p for pair p */
    ENCO_LOSS_ENCO_END = ENCO_LOSS_ENCO_PAIR0 + ENCO_MAX_PAIRS
};

/* EnCo's timers (bench's phase split). */
enum {
    ENCO_PHASE_G_FORWARD = 0,
    ENCO_PHASE_D_STEP,      /* D forward, losses, backward, Adam on D */
    ENCO_PHASE_G_GAN,       /* D forward on fake_B and backward to the image */
    ENCO_PHASE_HEADS,       /* sampling, heads forward and backward, EnCo loss */
    ENCO_PHASE_G_BACKWARD,
    ENCO_PHASE_OPTIMIZER,   /* Adam on G and F */
    ENCO_PHASE_COUNT
};

#endif
