// virtio-ccw channel command codes (spec 4.3, Linux virtio_ccw.c).
export const CCW_CMD_SET_VQ = 0x13;
export const CCW_CMD_VDEV_RESET = 0x33;
export const CCW_CMD_SET_IND = 0x43;
export const CCW_CMD_SET_CONF_IND = 0x53;
export const CCW_CMD_READ_FEAT = 0x12;
export const CCW_CMD_WRITE_FEAT = 0x11;
export const CCW_CMD_READ_CONF = 0x22;
export const CCW_CMD_WRITE_CONF = 0x21;
export const CCW_CMD_WRITE_STATUS = 0x31;
export const CCW_CMD_READ_VQ_CONF = 0x32;
export const CCW_CMD_READ_STATUS = 0x72;
export const CCW_CMD_SET_IND_ADAPTER = 0x73;
export const CCW_CMD_SET_VIRTIO_REV = 0x83;

/** CCW flags */
export const CCW_FLAG_CC = 0x40; // command chaining
export const CCW_FLAG_SLI = 0x20; // suppress length indication

/** Linux VIRTIO_CCW_REV_MAX */
export const VIRTIO_CCW_REV_MAX = 2;
